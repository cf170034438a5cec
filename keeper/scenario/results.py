"""What a scenario run reports: per expectation, per step and for the whole scenario."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from keeper.units import fmt


@dataclass
class ExpectationResult:
    step: int
    line: int | None
    subject: str
    expected: Decimal | int
    actual: Decimal | int | None
    tol: Decimal = Decimal(0)
    ok: bool = False
    error: str | None = None

    def describe(self) -> str:
        exp = fmt(self.expected) + (f" ± {fmt(self.tol)}" if self.tol else "")
        act = f"error: {self.error}" if self.error else fmt(self.actual)
        return f"{'ok' if self.ok else 'FAIL':<4}  {self.subject:<34} expected {exp:<14} actual {act}"


@dataclass
class StepResult:
    index: int
    line: int | None
    kind: str
    summary: str
    ok: bool = True
    error: str | None = None
    revert_reason: str | None = None
    expectations: list[ExpectationResult] = field(default_factory=list)


@dataclass
class ScenarioResult:
    name: str
    source: str
    steps: list[StepResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # setup failed, or a step failed and the run stopped
    output: list[str] = field(default_factory=list)

    @property
    def expectations(self) -> list[ExpectationResult]:
        return [e for s in self.steps for e in s.expectations]

    @property
    def failures(self) -> list[str]:
        out = [f"step {s.index}: {s.error}" for s in self.steps if not s.ok and s.error]
        out += [f"step {e.step}: {e.subject}: {e.describe()}" for e in self.expectations if not e.ok]
        if self.error and not any(not s.ok for s in self.steps):
            out.insert(0, self.error)
        return out

    @property
    def ok(self) -> bool:
        return self.error is None and all(s.ok for s in self.steps) and all(e.ok for e in self.expectations)

    def text(self) -> str:
        return "\n".join(self.output)
