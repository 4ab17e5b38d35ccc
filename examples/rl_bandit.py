"""Bounded reward drift: a contextual bandit whose rollouts run on an inference kernel.

    python examples/rl_bandit.py [--steps 300] [--candidate float16] [--eps 0.1] [--seed 0]

The policy (examples/bandit_policy.geo) is trained by REINFORCE with the *reference*
kernel (torch float64, autograd) while the *rollouts* sample actions from the
*candidate* kernel (torch float16 by default): the usual rollout/trainer mismatch of RL
systems. A kernel contract bounds the candidate's logit error: |z_c - z_r|_2 <= eps on
every context. Then |z_c - z_r|_inf <= eps, the action probabilities differ by a factor in
[e^-2eps, e^2eps], and the total-variation distance of the action distributions is at
most 1 - e^(-2 eps). With rewards in [0, 1] the expected returns of the two policies
differ by at most that TV over a horizon of 1 step (H steps: H times it, by coupling the
two trajectories step by step):

    |J(pi_c) - J(pi_r)| <= H (1 - exp(-2 eps)).

The script trains, checks the contract on the trained weights, measures the real drift
of the expected return (exact over a fixed set of contexts, no sampling noise) and the
metrics RL practitioners use for rollout/trainer mismatch (KL, max and mean probability
difference, Pearson correlation of the action probabilities), and shows the drift under
the bound. A deliberately broken kernel (a sign bug: it returns -logits) violates the
contract, its drift exceeds the bound, and the router blocks it before it serves.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

import geomir
from geomir.contracts.check import build_kernels, check_contract
from geomir.contracts.promotion import Router
from geomir.contracts.spec import load_contract
from geomir.weights_file import save_weights

HERE = Path(__file__).resolve().parent
ARMS, DIM = 4, 6
EVAL_CONTEXTS = 4096  # the fixed contexts of the exact expected returns


def reward_means(x: np.ndarray) -> np.ndarray:
    """Bernoulli reward means in [0, 1] of each arm, for contexts x (n, 6)."""
    w = np.random.default_rng(7).normal(size=(ARMS, DIM))
    return 1.0 / (1.0 + np.exp(-(x @ w.T)))


def expected_return(probs: np.ndarray, x: np.ndarray) -> float:
    return float(np.mean(np.sum(probs * reward_means(x), axis=-1)))


def _softmax(z):
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def mismatch_metrics(p_ref: np.ndarray, p_cand: np.ndarray) -> dict:
    """What RL systems track for rollout/trainer mismatch."""
    kl = np.sum(p_ref * (np.log(p_ref) - np.log(p_cand)), axis=-1)
    tv = 0.5 * np.abs(p_ref - p_cand).sum(-1)
    diff = np.abs(p_ref - p_cand)
    return {"kl_mean": float(kl.mean()), "kl_max": float(kl.max()), "tv_mean": float(tv.mean()),
            "tv_max": float(tv.max()), "max_prob_diff": float(diff.max()), "mean_prob_diff": float(diff.mean()),
            "pearson": float(np.corrcoef(p_ref.ravel(), p_cand.ravel())[0, 1])}


def train(steps: int, candidate_dtype: torch.dtype, seed: int = 0, batch: int = 256):
    """REINFORCE: actions sampled from the candidate kernel, gradients through the reference."""
    m = geomir.compile(HERE / "bandit_policy.geo", target="torch")
    params = {k: v.clone().requires_grad_(True) for k, v in m.init_params(seed, torch.float64).items()}
    opt = torch.optim.Adam(params.values(), lr=0.03)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        x = rng.normal(size=(batch, DIM))
        with torch.no_grad():  # the rollout: the candidate kernel's policy
            cand = {k: v.detach().to(candidate_dtype) for k, v in params.items()}
            logits = m.Policy(cand, torch.tensor(x, dtype=candidate_dtype)).double().numpy()
        probs = _softmax(logits)
        actions = np.array([rng.choice(ARMS, p=p / p.sum()) for p in probs])
        rewards = (rng.random(batch) < reward_means(x)[np.arange(batch), actions]).astype(np.float64)
        logp = torch.log_softmax(m.Policy(params, torch.tensor(x)), dim=-1)[torch.arange(batch), torch.tensor(actions)]
        loss = -((torch.tensor(rewards) - rewards.mean()) * logp).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {k: v.detach() for k, v in params.items()}


def contract_text(weights: Path, candidate: str, eps: float) -> str:
    return (f"contract: bandit-policy\nmodel: {HERE / 'bandit_policy.geo'}\nentry: Policy\nweights: {weights}\n"
            f"reference: {{target: torch, dtype: float64}}\ncandidate: {{target: torch, dtype: {candidate}}}\n"
            f"inputs: {{samples: 2048, seed: 1}}\nnumerical: {{max_abs: {eps}}}\n"
            "statistical: {quantile: 0.999, max_quantile_error: " + str(eps) + "}\n"
            "observability: {sample_rate: 1.0, record: [inputs_hash, max_error, kl, max_prob_diff, mean_prob_diff, "
            "pearson]}\n"
            "stages: {shadow: {window: 20, min_samples: 10}, canary: {window: 20, min_samples: 3}, "
            "full: {window: 50, min_samples: 5}}\n")


CANDIDATES = ("float32", "bfloat16", "float16")


def run(steps: int = 300, candidate: str = "float16", eps: float = 0.1, workdir: Path | None = None,
        seed: int = 0) -> dict:
    """Train, check the contract, measure the drift of a good and a broken kernel. The same
    ``seed`` gives the same numbers. Bad arguments raise ValueError before any work."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a whole number >= 1, found {steps!r}")
    if candidate not in CANDIDATES:
        raise ValueError(f"candidate must be one of {', '.join(CANDIDATES)}, found {candidate!r}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps (the contract's bound on the logit error) must be a finite number > 0, found {eps!r}")
    workdir = Path(workdir or tempfile.mkdtemp(prefix="rl_bandit_"))
    workdir.mkdir(parents=True, exist_ok=True)  # a new folder: save_weights does not make it
    params = train(steps, getattr(torch, candidate), seed=seed)
    weights = save_weights(params, workdir / "policy.npz")
    path = workdir / "bandit.yaml"
    path.write_text(contract_text(weights, candidate, eps))
    report = check_contract(path)
    contract, base = load_contract(path)
    kernels = build_kernels(contract, base)
    x = np.random.default_rng(3).normal(size=(EVAL_CONTEXTS, DIM))
    z_ref, z_cand = kernels.reference([x]), kernels.candidate([x])
    p_ref, p_cand = _softmax(z_ref), _softmax(z_cand)
    bound = 1.0 - math.exp(-2 * eps)  # horizon 1, rewards in [0, 1]
    good = {"drift": abs(expected_return(p_cand, x) - expected_return(p_ref, x)), "bound": bound,
            "contract_passed": report.passed, "contract_failed": _failed(report), "contract_samples": report.samples, "logit_error_max": float(np.linalg.norm(z_cand - z_ref, axis=-1).max()),
            **mismatch_metrics(p_ref, p_cand)}

    def broken_kernel(xs):  # a kernel with a sign bug: it returns -logits (the worst arm wins)
        return -kernels.candidate(xs)

    p_broken = _softmax(broken_kernel([x]))
    broken_report = check_contract(path, candidate=broken_kernel)
    router = Router(contract, state=workdir / "broken.state.sqlite",
                    kernels=build_kernels(contract, base, candidate=broken_kernel))
    for i in range(5):  # live calls: blocked offline, so the reference answers
        router(np.random.default_rng(50 + i).normal(size=(8, DIM)))
    broken = {"drift": abs(expected_return(p_broken, x) - expected_return(p_ref, x)), "bound": bound,
              "contract_passed": broken_report.passed, "router_status": router.status,
              "answered_by": sorted({d["answered_by"] for d in router.decisions()}),
              **mismatch_metrics(p_ref, p_broken)}
    return {"return_reference": expected_return(p_ref, x), "good": good, "broken": broken, "eps": eps}


def _failed(report) -> list[str]:
    """The contract's clauses that failed, as 'clause: measured > bound'."""
    out = []
    for c in report.clauses:
        if c.bound is None:
            continue
        if (c.measured < c.bound) if c.higher_is_better else (c.measured > c.bound):
            out.append(f"{c.clause}: {c.measured:.3g} {'<' if c.higher_is_better else '>'} {c.bound:.3g}")
    return out


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, found {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, found {text}")
    return value


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=_positive_int, default=300)
    p.add_argument("--candidate", default="float16", choices=CANDIDATES)
    p.add_argument("--eps", type=_positive_float, default=0.1, help="the contract's bound on the logit error")
    p.add_argument("--seed", type=int, default=0, help="the training seed (the same seed, the same numbers)")
    args = p.parse_args(argv)
    out = run(args.steps, args.candidate, args.eps, seed=args.seed)
    g, b = out["good"], out["broken"]
    print(f"expected return of the trained policy (reference kernel): {out['return_reference']:.4f}")
    print(f"contract: logit error <= {out['eps']} => return drift <= 1 - exp(-2 eps) = {g['bound']:.4f}")
    verdict = "holds" if g["contract_passed"] else (
        f"VIOLATED on its {g['contract_samples']} samples: {'; '.join(g['contract_failed']) or 'see the report'}")
    print(f"{args.candidate} kernel: contract {verdict} (max logit error on the {EVAL_CONTEXTS} evaluation contexts "
          f"{g['logit_error_max']:.3g}); drift {g['drift']:.2e} <= {g['bound']:.3g}; KL mean {g['kl_mean']:.2e}, "
          f"max |dp| {g['max_prob_diff']:.2e}, Pearson {g['pearson']:.6f}")
    print(f"broken kernel: contract {'holds' if b['contract_passed'] else 'VIOLATED'}; drift {b['drift']:.3g} "
          f"{'>' if b['drift'] > b['bound'] else '<='} {b['bound']:.3g}; router: {b['router_status']}, answered by "
          f"{', '.join(b['answered_by'])}")
    return 0 if g["drift"] <= g["bound"] and g["contract_passed"] and b["router_status"] == "blocked" else 1


if __name__ == "__main__":
    sys.exit(main())
