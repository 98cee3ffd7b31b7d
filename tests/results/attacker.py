"""An analyst who combines every download of a snapshot with the survey's structure.

The crowd is unknown to the attacker: how many respondents gave each possible combination of
answers (a "pattern"). Every published number is a linear constraint on those counts: a count
shown as p is a true count the rule could round to p; a hidden one is 1 to min_cell - 1 (or,
where its group's base is hidden, at most that); a group hidden whole says nothing. The structure
of the survey (who is asked what) is in the patterns themselves. An exact integer solver then
looks for the smallest and the largest value each true count can take: where they are equal and
the count is from 1 to min_cell - 1, the attacker has pinned it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from engage.results.disclosure import ALL, ANSWERED, ASKED, OTHER, SKIPPED, Rule
from engage.results.report import AggregateRow, Report

SKIP = "_skip"
NOT_ASKED = "_not_asked"


@dataclass(frozen=True)
class QuestionShape:
    """A question as the attacker knows it: its values and when it is asked."""

    id: str
    values: tuple[str, ...]
    # Asked given the earlier answers of the pattern (None: always).
    when: Callable[[dict[str, str]], bool] | None = None
    profile: str | None = None
    can_skip: bool = True


def patterns(questions: Sequence[QuestionShape]) -> list[dict[str, str]]:
    """Every combination of answers the survey's structure allows."""
    found: list[dict[str, str]] = [{}]
    for question in questions:
        grown = []
        for pattern in found:
            if question.when is not None and not question.when(pattern):
                grown.append({**pattern, question.id: NOT_ASKED})
                continue
            options = list(question.values) + ([SKIP] if question.can_skip else [])
            grown.extend({**pattern, question.id: option} for option in options)
        found = grown
    return found


@dataclass
class Attacker:
    questions: Sequence[QuestionShape]
    rule: Rule

    def __post_init__(self) -> None:
        self.patterns = patterns(self.questions)
        self.rows: list[np.ndarray] = []
        self.low: list[float] = []
        self.high: list[float] = []
        self.profiles = {q.profile: q for q in self.questions if q.profile}

    # -- what a cell counts ------------------------------------------------------------------

    def _in_group(self, pattern: dict[str, str], group: dict[str, set[str] | None]) -> bool:
        for attribute, held in group.items():
            if held is None:
                continue
            value = pattern[self.profiles[attribute].id]
            if value not in held:
                return False
        return True

    def coefficients(
        self, question_id: str, value: str, group: dict[str, set[str] | None]
    ) -> np.ndarray:
        """Which patterns a true count counts (1) and which not (0)."""
        out = np.zeros(len(self.patterns))
        for i, pattern in enumerate(self.patterns):
            if not self._in_group(pattern, group):
                continue
            if question_id == "_funnel":
                # Everyone seeded completed the survey: every stage but invited is everyone.
                out[i] = 0 if value == "invited" else 1
                continue
            answer = pattern[question_id]
            asked = answer != NOT_ASKED
            answered = asked and answer != SKIP
            hit = {
                ASKED: asked,
                ANSWERED: answered,
                SKIPPED: asked and not answered,
            }.get(value, answer == value)
            out[i] = 1 if hit else 0
        return out

    # -- what the downloads say ----------------------------------------------------------------

    def read(self, report: Report) -> None:
        """Add every constraint a download's rows give."""
        rows = [r for r in report.rows if r.question_id != "_stopped"]
        by = report.by
        shown_groups: dict[int, set[str]] = {
            i: {r.group[i] for r in rows if r.group[i] not in (ALL, OTHER)} for i in range(len(by))
        }
        tables: dict[tuple[str, tuple[str, ...]], list[AggregateRow]] = {}
        for row in rows:
            tables.setdefault((row.question_id, row.group), []).append(row)
        for (question_id, group), cells in tables.items():
            members = self._members(by, group, shown_groups)
            whole_hidden = all(c.suppressed for c in cells)
            answered = next((c for c in cells if c.value == ANSWERED), None)
            for cell in cells:
                if question_id != "_funnel" and question_id not in {q.id for q in self.questions}:
                    continue
                low, high = self._window(cell, whole_hidden, answered)
                if low is None:
                    continue
                self.rows.append(self.coefficients(question_id, cell.value, members))
                self.low.append(low)
                self.high.append(high)

    def _members(
        self, by: Sequence[str], group: tuple[str, ...], shown: dict[int, set[str]]
    ) -> dict[str, set[str] | None]:
        members: dict[str, set[str] | None] = {}
        for i, attribute in enumerate(by):
            part = group[i]
            if part == ALL:
                members[attribute] = None
            elif part == OTHER:
                members[attribute] = set(self.profiles[attribute].values) - shown[i]
            else:
                members[attribute] = {part}
        return members

    def _window(
        self, cell: AggregateRow, whole_hidden: bool, answered: AggregateRow | None
    ) -> tuple[float | None, float]:
        rule = self.rule
        if cell.suppressed:
            if whole_hidden:
                return None, 0
            is_value = cell.value not in (ANSWERED, ASKED, SKIPPED)
            if is_value and answered is not None and answered.suppressed:
                return 0, rule.min_cell - 1
            return 1, rule.min_cell - 1
        assert cell.count is not None
        if cell.count == 0:
            return 0, 0
        if cell.count == rule.smallest_published:
            return rule.min_cell, cell.count + rule.round_base - 1
        return cell.count - rule.round_base + 1, cell.count + rule.round_base - 1

    # -- the solver ----------------------------------------------------------------------------

    def check_truth(self, crowd: np.ndarray) -> None:
        """The true crowd must satisfy every constraint: else the model is wrong, not safe."""
        matrix = np.array(self.rows)
        values = matrix @ crowd
        bad = [
            (i, values[i], self.low[i], self.high[i])
            for i in range(len(values))
            if not self.low[i] <= values[i] <= self.high[i]
        ]
        assert not bad, bad[:5]

    def range_of(self, target: np.ndarray, limit: int) -> tuple[int, int]:
        """The smallest and largest value the true count can take given everything read."""
        constraint = LinearConstraint(np.array(self.rows), self.low, self.high)
        integrality = np.ones(len(self.patterns))
        bounds = Bounds(0, limit)
        found = []
        for sign in (1, -1):
            result = milp(
                sign * target, constraints=constraint, integrality=integrality, bounds=bounds
            )
            assert result.status == 0, result.message
            found.append(round(sign * result.fun))
        return found[0], found[1]

    def pinned(
        self, crowd: np.ndarray, targets: Iterable[tuple[str, str, dict[str, set[str] | None]]]
    ) -> list[tuple[str, str, dict, int]]:
        """The true counts from 1 to min_cell - 1 that the constraints pin to one value."""
        self.check_truth(crowd)
        limit = int(crowd.sum()) * 2 + 10
        pinned = []
        for question_id, value, group in targets:
            target = self.coefficients(question_id, value, group)
            true = int(target @ crowd)
            if not self.rule.is_hidden(true):
                continue
            low, high = self.range_of(target, limit)
            assert low <= true <= high
            if low == high:
                pinned.append((question_id, value, group, true))
        return pinned

    def targets(self) -> list[tuple[str, str, dict[str, set[str] | None]]]:
        """Every count of every question, value and raw group (one or two attributes)."""
        attributes = list(self.profiles)
        groups: list[dict[str, set[str] | None]] = [{}]
        for size in (1, 2):
            for chosen in itertools.combinations(attributes, size):
                for values in itertools.product(*(self.profiles[a].values for a in chosen)):
                    groups.append({a: {v} for a, v in zip(chosen, values, strict=True)})
        found = []
        for question in self.questions:
            for value in (ANSWERED, ASKED, SKIPPED, *question.values):
                for group in groups:
                    found.append((question.id, value, group))
        return found

    def crowd_vector(self, respondents: Sequence[dict[str, str]]) -> np.ndarray:
        index = {tuple(sorted(p.items())): i for i, p in enumerate(self.patterns)}
        vector = np.zeros(len(self.patterns))
        for respondent in respondents:
            vector[index[tuple(sorted(respondent.items()))]] += 1
        return vector
