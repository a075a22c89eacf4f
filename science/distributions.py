"""Target distributions whose every probability is known, and distances between distributions.

A distribution over target sequences is a dict ``{tuple_of_words: probability}``. Sequences are short (at most
about ten positions of two words), so everything here is exact enumeration, no approximation.

The Ising-like chain: positions i = 1..L hold spins s_i in {+1, -1}, written as the words ``a`` (+1) and ``b``
(-1), with p(s) proportional to exp(beta * sum_i s_i s_(i+1) + sum_i h_i s_i). beta = 0 makes the positions
independent; a large beta makes neighbours agree, so the joint has two modes (mostly ``a`` or mostly ``b``)
whose mixture no product of per-position marginals can represent.
"""

import itertools
import math
import random
from typing import Callable, Dict, List, Optional, Sequence, Tuple

Words = Tuple[str, ...]
Distribution = Dict[Words, float]

SPIN_WORDS = {+1: "a", -1: "b"}
FIELD_WORDS = {"u": 0.8, "n": 0.0, "d": -0.8}  # source words giving a position's field h_i


def chain_joint(beta: float, fields: Sequence[float]) -> Distribution:
    """The exact joint over all 2^L spin sequences of a chain with coupling ``beta`` and fields h_1..h_L."""
    weights = {}
    for spins in itertools.product((+1, -1), repeat=len(fields)):
        energy = beta * sum(left * right for left, right in zip(spins, spins[1:]))
        energy += sum(h * s for h, s in zip(fields, spins))
        weights[tuple(SPIN_WORDS[s] for s in spins)] = math.exp(energy)
    total = sum(weights.values())
    return {words: weight / total for words, weight in weights.items()}


def field_source(rng: random.Random, length: int) -> str:
    """A source of ``length`` field words (FIELD_WORDS), one per target position."""
    return " ".join(rng.choices(sorted(FIELD_WORDS), k=length))


def field_joint(source: str, beta: float) -> Distribution:
    """The chain with coupling ``beta`` and the fields a field-word source names."""
    return chain_joint(beta, [FIELD_WORDS[word] for word in source.split()])


def two_modes(first: Words, second: Words) -> Distribution:
    """Half the mass on each of two sequences."""
    return {first: 0.5, second: 0.5} if first != second else {first: 1.0}


def sample(distribution: Distribution, count: int, rng: random.Random) -> List[Words]:
    sequences = list(distribution)
    return rng.choices(sequences, weights=[distribution[s] for s in sequences], k=count)


def sampled_pairs(count: int, make_source: Callable[[int, random.Random], str],
                  distribution_of: Callable[[str], Distribution], rng: random.Random) -> List[Tuple[str, str]]:
    """COUNT (source, target) lines: source ``i`` made by ``make_source(i, rng)``, then one target drawn from its
    exact distribution."""
    pairs = []
    for index in range(count):
        source = make_source(index, rng)
        pairs.append((source, " ".join(sample(distribution_of(source), 1, rng)[0])))
    return pairs


def empirical(samples: Sequence[Words]) -> Distribution:
    counts: Dict[Words, float] = {}
    for words in samples:
        counts[tuple(words)] = counts.get(tuple(words), 0.0) + 1.0
    return {words: count / len(samples) for words, count in counts.items()}


def total_variation(p: Distribution, q: Distribution) -> float:
    """Half the L1 distance: the largest difference in probability the two give any set of sequences."""
    return 0.5 * sum(abs(p.get(words, 0.0) - q.get(words, 0.0)) for words in set(p) | set(q))


def marginals(distribution: Distribution) -> List[Dict[str, float]]:
    """Per position, the probability of each word."""
    length = len(next(iter(distribution)))
    result: List[Dict[str, float]] = [{} for _ in range(length)]
    for words, probability in distribution.items():
        for position, word in enumerate(words):
            result[position][word] = result[position].get(word, 0.0) + probability
    return result


def product_of_marginals(distribution: Distribution) -> Distribution:
    """What one parallel pass that samples each position from its exact marginal produces."""
    per_position = marginals(distribution)
    product = {}
    for words in itertools.product(*(sorted(m) for m in per_position)):
        product[words] = math.prod(m[w] for m, w in zip(per_position, words))
    return product


def conditionals(distribution: Distribution, observed: Sequence[Optional[str]]) -> List[Optional[Dict[str, float]]]:
    """p(x_i | the observed positions) for each hidden position i (``observed[i] is None``); None where observed.

    These are what a masked model predicts in one pass: each hidden position's marginal given the visible ones.
    """
    consistent = {words: p for words, p in distribution.items()
                  if all(seen is None or seen == word for seen, word in zip(observed, words))}
    total = sum(consistent.values())
    if total == 0:
        raise ValueError(f"the observed words {observed} have probability 0")
    result: List[Optional[Dict[str, float]]] = []
    for position, seen in enumerate(observed):
        if seen is not None:
            result.append(None)
            continue
        column: Dict[str, float] = {}
        for words, p in consistent.items():
            column[words[position]] = column.get(words[position], 0.0) + p / total
        result.append(column)
    return result


def kl_divergence(p: Dict[str, float], q: Dict[str, float], floor: float = 1e-12) -> float:
    """KL(p || q) in nats over p's support; q may spread mass over words p never uses (that mass is lost)."""
    return sum(pw * math.log(pw / max(q.get(word, 0.0), floor)) for word, pw in p.items() if pw > 0)


def typical_set(distribution: Distribution, mass: float = 0.9) -> set:
    """The fewest most probable sequences that together hold at least ``mass`` of the probability."""
    chosen, held = set(), 0.0
    for words, probability in sorted(distribution.items(), key=lambda item: -item[1]):
        if held >= mass:
            break
        chosen.add(words)
        held += probability
    return chosen


def total_correlation(distribution: Distribution) -> float:
    """Sum of the positions' entropies minus the joint's entropy (nats): 0 exactly when positions are
    independent; how much one parallel pass (a product of marginals) must lose."""
    def entropy(values):
        return -sum(p * math.log(p) for p in values if p > 0)

    return sum(entropy(m.values()) for m in marginals(distribution)) - entropy(distribution.values())


def expected_sampling_tv(distribution: Distribution, count: int, rng: random.Random, repeats: int = 20) -> float:
    """The total variation that ``count`` exact samples show on average: the floor any sampled estimate has."""
    return sum(total_variation(empirical(sample(distribution, count, rng)), distribution)
               for _ in range(repeats)) / repeats
