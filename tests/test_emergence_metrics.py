"""Task metrics, the BIG-Bench emergence score and the power-law toy model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pysearch.emergence import (
    ToyModel,
    brier_score,
    emergence_score,
    exact_match,
    loglinear_r2,
    multiple_choice_grade,
    per_token_log_prob,
    resolution_limit,
    sequence_log_prob,
    step_share,
    token_edit_distance,
)


class TestExactMatch:
    def test_hand_cases(self):
        """Only identical token sequences score 1; order and length both matter."""
        got = exact_match([[1, 2, 3], [1, 2], "abc", [3, 2, 1]], [[1, 2, 3], [1, 2, 0], "abc", [1, 2, 3]])
        assert got.tolist() == [1.0, 0.0, 1.0, 0.0]

    def test_length_mismatch(self):
        """Different numbers of predictions and targets is an error that says so."""
        with pytest.raises(ValueError, match="differ in length"):
            exact_match([[1]], [[1], [2]])


class TestMultipleChoiceGrade:
    def test_hand_cases(self):
        """The argmax choice must be the correct one; a tie for the top is wrong."""
        got = multiple_choice_grade([[0.1, 0.7, 0.2], [0.5, 0.5, 0.0], [3.0, -1.0]], [1, 0, 1])
        assert got.tolist() == [1.0, 0.0, 0.0]

    def test_bad_index(self):
        """A correct index outside the choices names the item."""
        with pytest.raises(ValueError, match="item 0"):
            multiple_choice_grade([[0.2, 0.8]], [2])


class TestTokenEditDistance:
    @pytest.mark.parametrize(
        "a,b,d",
        [
            ("kitten", "sitting", 3),
            ([1, 2, 3], [1, 2, 3], 0),
            ([], [4, 5], 2),
            ([1, 2, 3, 4], [2, 3, 4], 1),
            ([1, 2], [2, 1], 2),
            (["12", "+", "7"], ["12", "7"], 1),
        ],
    )
    def test_hand_cases(self, a, b, d):
        """Levenshtein distance over tokens on textbook cases."""
        assert token_edit_distance(a, b) == d

    @given(st.lists(st.integers(0, 3), max_size=8), st.lists(st.integers(0, 3), max_size=8))
    def test_metric_properties(self, a, b):
        """Symmetric, zero only for equal sequences, bounded by the longer length and by |len a - len b| below."""
        d = token_edit_distance(a, b)
        assert d == token_edit_distance(b, a)
        assert (d == 0) == (a == b)
        assert abs(len(a) - len(b)) <= d <= max(len(a), len(b))


class TestBrier:
    def test_hand_cases(self):
        """Certain-and-right scores 0, certain-and-wrong 2, uniform over 4 choices 0.75."""
        got = brier_score([[1, 0, 0], [0, 1, 0], [0.25] * 4], [0, 2, 3])
        np.testing.assert_allclose(got, [0.0, 2.0, 0.75])

    def test_not_a_distribution(self):
        """Probabilities that do not sum to 1 are rejected."""
        with pytest.raises(ValueError, match="sum to 1"):
            brier_score([[0.5, 0.6]], [0])


class TestLogProb:
    def test_per_token_and_sequence(self):
        """Per-token log-prob averages over all tokens; sequence log-prob sums within each item."""
        items = [[0.5, 0.25], [1.0]]
        assert per_token_log_prob(items) == pytest.approx((math.log(0.5) + math.log(0.25)) / 3)
        np.testing.assert_allclose(sequence_log_prob(items), [math.log(0.125), 0.0])

    def test_zero_probability_is_minus_inf(self):
        """A zero probability gives -inf, not a warning or NaN."""
        assert per_token_log_prob([[0.0, 0.5]]) == -math.inf

    def test_out_of_range(self):
        """Probabilities above 1 are an error."""
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            per_token_log_prob([[1.5]])


class TestEmergenceScore:
    def test_hand_series(self):
        """sign * range / sqrt(median squared step), computed by hand for a jump."""
        # steps 0.01, 0.01, 0.5, 0.02 -> squared median 1e-4 (average of 1e-4, 1e-4, 4e-4, 0.25 middle two)
        y = [0.0, 0.01, 0.02, 0.52, 0.54]
        steps2 = sorted(np.diff(y) ** 2)
        expect = 0.54 / math.sqrt((steps2[1] + steps2[2]) / 2)
        assert emergence_score([1, 2, 3, 4, 5], y) == pytest.approx(expect)

    def test_sorts_by_x_and_sign(self):
        """Points are sorted by x first; a falling curve has a negative score."""
        assert emergence_score([3, 1, 2], [2.0, 0.0, 1.0]) == pytest.approx(2.0)
        assert emergence_score([1, 2, 3], [2.0, 1.0, 0.0]) == pytest.approx(-2.0)

    def test_flat_and_step(self):
        """A flat curve scores 0; a single jump among zero steps scores infinity."""
        assert emergence_score([1, 2, 3], [1.0, 1.0, 1.0]) == 0.0
        assert emergence_score([1, 2, 3, 4], [0, 0, 0, 1.0]) == math.inf

    def test_too_few_points(self):
        """One point is not a curve."""
        with pytest.raises(ValueError, match="at least 2"):
            emergence_score([1], [1])

    def test_step_share_and_r2(self):
        """Even steps give share 1/(n-1) and R^2 1 in log x; a single jump gives share 1."""
        x = [1, 10, 100, 1000]
        assert step_share(x, [0, 1, 2, 3]) == pytest.approx(1 / 3)
        assert loglinear_r2(x, [0, 1, 2, 3]) == pytest.approx(1.0)
        assert step_share(x, [0, 0, 0, 5]) == pytest.approx(1.0)
        assert loglinear_r2(x, [0, 0, 0, 5]) < 0.7


class TestToyModel:
    N = np.logspace(6, 14, 13)

    def test_formulas(self):
        """p = exp(-(N/c)^alpha), exact match p^L, edit distance L(1-p), log-prob -L*CE."""
        t = ToyModel(c=1e11, alpha=-0.2, n_tokens=10)
        ce = (1e9 / 1e11) ** -0.2
        p = math.exp(-ce)
        assert t.per_token_loss(1e9) == pytest.approx(ce)
        assert t.exact_match(1e9) == pytest.approx(p**10)
        assert t.edit_distance(1e9) == pytest.approx(10 * (1 - p))
        assert t.sequence_log_prob(1e9) == pytest.approx(-10 * ce)

    def test_exact_match_emergent_others_smooth(self):
        """The same smooth per-token gain looks emergent under exact match only."""
        t = ToyModel(c=1e11, alpha=-0.2, n_tokens=10)
        n = len(self.N)
        em = emergence_score(self.N, t.exact_match(self.N))
        ed = emergence_score(self.N, t.edit_distance(self.N))
        lp = emergence_score(self.N, t.sequence_log_prob(self.N))
        assert em > 100 * abs(ed)
        assert abs(ed) < 2 * (n - 1) and abs(lp) < 2 * (n - 1)  # a steady curve scores about n - 1
        assert step_share(self.N, t.exact_match(self.N)) > 0.5
        assert loglinear_r2(self.N, t.edit_distance(self.N)) > 0.8

    def test_resolution_hides_small_accuracies(self):
        """On a finite test set exact match reads 0 where the true value is below 1/(items)."""
        t = ToyModel(c=1e11, alpha=-0.2, n_tokens=10)
        n_items = 100
        sim = t.simulate(self.N, n_items, np.random.default_rng(0))
        below = t.exact_match(self.N) < 0.1 * resolution_limit(n_items)
        assert below.any() and np.all(sim["exact_match"][below] == 0.0)
        np.testing.assert_allclose(sim["edit_distance"], t.edit_distance(self.N), atol=0.35)
        assert resolution_limit(100, 5) == pytest.approx(1 / 500)

    def test_bad_parameters(self):
        """alpha must be negative (loss falls with scale); N must be positive."""
        with pytest.raises(ValueError, match="alpha"):
            ToyModel(alpha=0.1)
        with pytest.raises(ValueError, match="N must be"):
            ToyModel().exact_match(-1.0)
