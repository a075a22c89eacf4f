"""The science experiments: their exact distributions (fast), and each experiment's qualitative claim at a small
scale through the real fairseq-train and the project's generator (slow; seeds fixed, thresholds with margin).

The small scales' update counts were cut by a third on 2026-12-01 to keep the suite near 15 minutes, and those of
distillation, dependence and masking ratio again on 2026-12-02. At seed 1 they measured, against the thresholds
below: mode mixing (2000 updates) one sampled pass 83% / 95% incoherent, four passes 0% / 0%, two passes without
re-masking 27% / 37% against 3% / 28% with it (at 1500 updates the permutations' 50% against 52% failed the last
assertion, so it stays at 2000); dependence (700) one-pass TV 0.88 at beta 2 against 0.13 at beta 0, 0.17 after six
passes, passes needed 1 and 6; masking ratio (450) KL on four or more hidden positions 0.150 for 0.15 against 0.049
for U(0,1), 0.135 against 0.058 on all; distillation (700) one sampled pass fails 63% on raw targets and 22.5% on
distilled ones, 99.9% of which lie in the 90% set (seed 2: 65.5% and 19%; at 1000 updates, seed 1: 55% and 15.5%)."""

import math
import random

import pytest

from science import dependence, distillation, masking_ratio, mode_mixing
from science import distributions as dist


def test_chain_joint_is_a_distribution_uniform_without_coupling_or_fields():
    joint = dist.chain_joint(1.3, [0.8, 0.0, -0.8, 0.0])
    assert len(joint) == 16 and math.isclose(sum(joint.values()), 1.0)
    flat = dist.chain_joint(0.0, [0.0] * 5)
    assert all(math.isclose(p, 1 / 32) for p in flat.values())
    # a positive field favours "a" at that position; a coupling favours agreeing neighbours
    assert dist.marginals(dist.chain_joint(0.0, [0.8]))[0]["a"] > 0.8
    assert dist.chain_joint(2.0, [0.0] * 3)[("a", "a", "a")] > dist.chain_joint(2.0, [0.0] * 3)[("a", "b", "a")]


def test_conditionals_of_the_chain_have_the_markov_property():
    joint = dist.chain_joint(1.0, [0.8, -0.8, 0.0, 0.8, 0.0])
    # position 2 given both neighbours does not depend on positions further away
    near = dist.conditionals(joint, ("a", "b", None, "a", "b"))[2]
    far = dist.conditionals(joint, ("b", "b", None, "a", "a"))[2]
    assert math.isclose(near["a"], far["a"])
    # exact: p(s_2 | s_1 = b, s_3 = a) is proportional to exp(h_2 s_2 + beta s_2 (s_1 + s_3)) = exp(0) for both
    assert math.isclose(near["a"], 0.5)
    # with nothing observed the conditional is the marginal
    hidden = dist.conditionals(joint, (None,) * 5)
    assert all(math.isclose(h["a"], m["a"]) for h, m in zip(hidden, dist.marginals(joint)))
    with pytest.raises(ValueError, match="probability 0"):
        dist.conditionals(mode_mixing.modes("R q1 q2 q3"), ("a", "b", None, None, None, None))


def test_dependence_measures_grow_with_the_coupling():
    correlations, product_tvs = [], []
    for beta in (0.0, 0.5, 1.0, 2.0):
        joint = dist.chain_joint(beta, [0.0] * 6)
        correlations.append(dist.total_correlation(joint))
        product_tvs.append(dist.total_variation(dist.product_of_marginals(joint), joint))
    assert abs(correlations[0]) < 1e-9 and product_tvs[0] < 1e-9
    assert correlations == sorted(correlations) and product_tvs == sorted(product_tvs)
    assert product_tvs[-1] > 0.8


def test_typical_set_is_the_smallest_set_holding_the_mass():
    joint = dist.chain_joint(1.5, [0.8, 0.0, 0.0, -0.8])
    chosen = dist.typical_set(joint, 0.9)
    assert sum(joint[w] for w in chosen) >= 0.9
    weakest = min(chosen, key=joint.get)
    assert sum(joint[w] for w in chosen - {weakest}) < 0.9
    assert all(joint[w] <= joint[weakest] for w in set(joint) - chosen)


def test_total_variation_kl_and_the_sampling_floor():
    p, q = {("a",): 0.75, ("b",): 0.25}, {("a",): 0.25, ("b",): 0.75}
    assert math.isclose(dist.total_variation(p, q), 0.5) and dist.total_variation(p, p) == 0
    assert math.isclose(dist.kl_divergence({"a": 0.5, "b": 0.5}, {"a": 0.25, "b": 0.25, "c": 0.5}), math.log(2))
    assert dist.kl_divergence({"a": 1.0}, {"a": 1.0}) == 0
    joint = dist.chain_joint(0.5, [0.0] * 6)
    rng = random.Random(0)
    assert dist.expected_sampling_tv(joint, 4000, rng) < dist.expected_sampling_tv(joint, 250, rng) / 2


def test_mode_mixing_counts_an_output_coherent_only_when_it_is_a_mode_of_its_source():
    assert mode_mixing.modes("P w1 w2") == {("w1", "w2") * 3: 0.5, ("w2", "w1") * 3: 0.5}
    sources = ["R q1 q2 q3", "R q1 q2 q3", "P w1 w2", "P w1 w2"]
    outputs = [("b",) * 6, ("a", "a", "b", "a", "a", "a"), ("w2", "w1") * 3, ("w1", "w1", "w2", "w2", "w1", "w2")]
    assert mode_mixing.incoherent_share(sources, outputs) == 0.5
    pairs = mode_mixing.corpus(400, random.Random(0))
    assert all(tuple(t.split()) in mode_mixing.modes(s) for s, t in pairs)
    assert 0.3 < sum(t.startswith("a") for s, t in pairs if s.startswith("R")) / 200 < 0.7


def test_passes_needed_is_the_fewest_within_tolerance_of_one_position_per_pass():
    rows = [dict(beta=1.0, rejecter="random", passes=p, tv=tv) for p, tv in zip((1, 2, 3, 4, 6), (0.7, 0.3, 0.2, 0.12, 0.1))]
    rows.append(dict(beta=1.0, rejecter="linear", passes=1, tv=0.0))  # other orders do not count
    assert dependence.passes_needed(rows, 1.0) == 4  # 0.12 <= 0.10 + 0.05 < 0.2


def test_masking_ratio_contexts_hide_one_to_all_positions():
    hidden = [sum(w is None for w in seen) for _, seen in masking_ratio.contexts(600, random.Random(0))]
    assert min(hidden) == 1 and max(hidden) == masking_ratio.LENGTH
    assert set(hidden) == set(range(1, masking_ratio.LENGTH + 1))


@pytest.mark.slow
def test_one_sampled_pass_mixes_modes_and_committing_a_few_words_per_pass_repairs_it(tmp_path):
    results = mode_mixing.run(tmp_path, "small")
    cell = {(r["sampling"], r["rejecter"], r["passes"]): r for r in results["rows"]}
    for family in ("repeat", "permutation"):
        assert cell[True, "linear", 1][family] >= 0.6
        assert cell[True, "linear", 4][family] <= 0.2
        assert cell[True, "passthrough", 2][family] > cell[True, "linear", 2][family]


@pytest.mark.slow
def test_stronger_dependence_needs_more_passes(tmp_path):
    results = dependence.run(tmp_path, "small")
    tv = {(r["beta"], r["rejecter"], r["passes"]): r["tv"] for r in results["rows"]}
    assert tv[2.0, "random", 1] >= 0.6 and tv[2.0, "random", 1] >= 3 * tv[0.0, "random", 1]
    assert tv[2.0, "random", 6] <= tv[2.0, "random", 1] / 2
    assert results["passes_needed"]["0.0"] == 1 < results["passes_needed"]["2.0"]


@pytest.mark.slow
def test_a_low_masking_ratio_learns_heavily_masked_conditionals_worst(tmp_path):
    results = masking_ratio.run(tmp_path, "small", ratios=("0.15", "U(0,1)"))
    kl = {r["ratio"]: r for r in results["rows"]}
    assert kl["0.15"]["k>=4"] > 1.5 * kl["U(0,1)"]["k>=4"]
    assert kl["0.15"]["all"] > kl["U(0,1)"]["all"]


@pytest.mark.slow
def test_distilled_targets_make_a_single_sampled_pass_fail_less(tmp_path):
    results = distillation.run(tmp_path, "small")
    failures = {r["data"]: r for r in results["rows"]}
    assert failures["raw"]["1 pass, sampling"] >= 0.3
    assert failures["distilled"]["1 pass, sampling"] <= failures["raw"]["1 pass, sampling"] / 2
    assert results["distilled_in_90_set"] >= 0.9


def test_a_figure_is_saved_and_closed_and_a_failed_plot_leaves_none_open(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from science.lab import figure

    with figure(tmp_path / "ok.png") as axes:
        axes.plot([0, 1], [1, 0])
    assert (tmp_path / "ok.png").read_bytes()[:4] == b"\x89PNG" and plt.get_fignums() == []
    with pytest.raises(ValueError):
        with figure(tmp_path / "failed.png") as axes:
            raise ValueError("a bad series")
    assert plt.get_fignums() == [] and not (tmp_path / "failed.png").exists()
