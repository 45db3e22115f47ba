"""Fraud metrics and plots on a set of labelled batches.

PR-AUC (average precision) is the headline: with 0.2% fraud, ROC-AUC and
accuracy look excellent for nearly any model. The decision threshold is chosen
here on the validation rows (``report.threshold``: max F1 or min expected cost)
and returned, so train saves it in metrics.json and predict uses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from . import plots
from .baseline import baseline_scores, check_baseline
from .classification import roc_auc
from .pipeline import Batches

HEADLINE = "pr_auc"  # the number train prints at the end


def report(model: keras.Model, batches: Batches, meta: dict[str, Any], plots_dir: Path
           ) -> dict[str, Any]:
    """PR-AUC, ROC-AUC, operating points, the chosen threshold and the baseline; plots."""
    scores = np.asarray(model.predict(batches, verbose=0), dtype=np.float64).reshape(-1)
    labels = batches.targets.reshape(-1).astype(np.int64)
    settings = meta["report"]
    curve = pr_curve(labels, scores)
    rate = float(labels.mean())
    results: dict[str, Any] = {
        "pr_auc": average_precision(labels, scores),
        "roc_auc": roc_auc(labels, scores),
        "positive_rate": rate,
        "positives": int(labels.sum()),
    }
    # A constant score (a model that learned nothing) ranks no row above another.
    results["chance_pr_auc"] = average_precision(labels, np.zeros_like(scores))
    results["pr_auc_over_positive_rate"] = results["pr_auc"] / rate if rate else None
    for level in settings["precision_levels"]:
        results[f"recall_at_precision_{level:g}"] = recall_at_precision(curve, level)
    for level in settings["recall_levels"]:
        results[f"precision_at_recall_{level:g}"] = precision_at_recall(curve, level)

    costs = expected_cost(curve, labels, settings)
    threshold, chosen = choose_threshold(curve, costs, settings["threshold"])
    results.update(threshold=threshold, threshold_rule=settings["threshold"], **chosen)
    trained = (meta.get("trained") or {}).get("threshold")  # set by evaluate, a test split
    if trained is not None:  # other data: also show the operating point chosen on validation
        results["at_trained_threshold"] = operating_point(labels, scores, trained, settings)

    width = batches.inputs["numeric"].shape[1] if "numeric" in batches.inputs else 0
    saved = check_baseline(meta.get("baseline"), meta["features"], width)
    base = baseline_scores(batches.inputs, meta["features"], saved)
    results["baseline_pr_auc"] = average_precision(labels, base)
    results["baseline_roc_auc"] = roc_auc(labels, base)
    _plot_curves(labels, scores, base, curve, threshold, plots_dir)
    _plot_histograms(labels, scores, threshold, plots_dir / "score_histograms.png")
    _plot_cost(curve, costs, threshold, settings, plots_dir / "threshold_cost.png")
    print(f"PR-AUC {results['pr_auc']:.4f} (logistic-regression baseline "
          f"{results['baseline_pr_auc']:.4f}, positive rate {rate:.4%}); threshold "
          f"{threshold:.4f} by {settings['threshold']}: precision {chosen['precision']:.3f}, "
          f"recall {chosen['recall']:.3f}")
    return results


# --------------------------------------------------------------------------- metrics


def pr_curve(labels: np.ndarray, scores: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, TP and FP counts at every distinct score, highest score first."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_labels = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(scores) - 1]  # end of tie groups
    tp = np.cumsum(sorted_labels)[last].astype(np.float64)
    fp = (last + 1) - tp
    positives = max(1.0, float(labels.sum()))
    return {"threshold": sorted_scores[last], "tp": tp, "fp": fp,
            "precision": tp / (tp + fp), "recall": tp / positives}


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the PR curve as sum of precision x recall steps (scikit-learn's AP)."""
    if labels.sum() == 0:
        return 0.0
    curve = pr_curve(labels, scores)
    steps = np.diff(np.r_[0.0, curve["recall"]])
    return float(np.sum(steps * curve["precision"]))


def recall_at_precision(curve: dict[str, np.ndarray], level: float) -> float:
    """Highest recall among thresholds whose precision is at least ``level``."""
    ok = curve["precision"] >= level
    return float(curve["recall"][ok].max()) if ok.any() else 0.0


def precision_at_recall(curve: dict[str, np.ndarray], level: float) -> float:
    """Highest precision among thresholds whose recall is at least ``level``."""
    ok = curve["recall"] >= level - 1e-12
    return float(curve["precision"][ok].max()) if ok.any() else 0.0


def expected_cost(curve: dict[str, np.ndarray], labels: np.ndarray, settings: dict[str, Any]
                  ) -> np.ndarray:
    """Cost per 1,000 rows at each threshold: missed fraud + false alarms."""
    missed = labels.sum() - curve["tp"]
    total = settings["cost_missed_fraud"] * missed + settings["cost_false_alarm"] * curve["fp"]
    return 1000.0 * total / len(labels)


def choose_threshold(curve: dict[str, np.ndarray], costs: np.ndarray, rule: str
                     ) -> tuple[float, dict[str, float]]:
    """The threshold maximising F1 or minimising cost, with its precision, recall, F1, cost."""
    precision, recall = curve["precision"], curve["recall"]
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    best = int(np.argmax(f1)) if rule == "f1" else int(np.argmin(costs))
    return float(curve["threshold"][best]), {
        "precision": float(precision[best]), "recall": float(recall[best]),
        "f1": float(f1[best]), "cost_per_1000_rows": float(costs[best]),
        "flagged_rate": float((curve["tp"][best] + curve["fp"][best])
                              / (curve["tp"][-1] + curve["fp"][-1])),
    }


def operating_point(labels: np.ndarray, scores: np.ndarray, threshold: float,
                    settings: dict[str, Any]) -> dict[str, float]:
    """Precision, recall, F1 and cost of the decisions ``score >= threshold``."""
    flagged = scores >= threshold
    tp = float(np.sum(flagged & (labels == 1)))
    fp = float(np.sum(flagged & (labels == 0)))
    fn = float(labels.sum()) - tp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    cost = settings["cost_missed_fraud"] * fn + settings["cost_false_alarm"] * fp
    return {"threshold": threshold, "precision": precision, "recall": recall, "f1": f1,
            "cost_per_1000_rows": 1000.0 * cost / len(labels)}


# --------------------------------------------------------------------------- plots


def _plot_curves(labels: np.ndarray, scores: np.ndarray, base: np.ndarray,
                 curve: dict[str, np.ndarray], threshold: float, plots_dir: Path) -> None:
    import matplotlib.pyplot as plt

    base_curve = pr_curve(labels, base)
    fig, axis = plt.subplots(figsize=(5, 4.2))
    axis.plot(curve["recall"], curve["precision"],
              label=f"model (AP {average_precision(labels, scores):.3f})")
    axis.plot(base_curve["recall"], base_curve["precision"], "--",
              label=f"logistic regression (AP {average_precision(labels, base):.3f})")
    axis.axhline(labels.mean(), color="grey", lw=0.8, label=f"positive rate {labels.mean():.3%}")
    at = int(np.argmin(np.abs(curve["threshold"] - threshold)))
    axis.plot(curve["recall"][at], curve["precision"][at], "o", color="red",
              label=f"threshold {threshold:.3f}")
    axis.set(xlabel="recall", ylabel="precision", title="precision-recall (validation)",
             xlim=(0, 1), ylim=(0, 1.02))
    axis.legend(fontsize=8)
    plots.save_figure(fig, plots_dir / "pr_curve.png")

    fig, axis = plt.subplots(figsize=(5, 4.2))
    for name, values, style in (("model", scores, "-"), ("logistic regression", base, "--")):
        fpr, tpr = _roc_points(labels, values)
        area = roc_auc(labels, values)
        shown = "undefined" if area is None else f"{area:.3f}"
        axis.plot(fpr, tpr, style, label=f"{name} (AUC {shown})")
    axis.plot([0, 1], [0, 1], color="grey", lw=0.8)
    axis.set(xlabel="false positive rate", ylabel="true positive rate",
             title="ROC (validation)", xlim=(0, 1))
    axis.set_xscale("symlog", linthresh=1e-3)
    axis.legend(fontsize=8)
    plots.save_figure(fig, plots_dir / "roc_curve.png")


def _roc_points(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    curve = pr_curve(labels, scores)
    negatives = max(1, len(labels) - int(labels.sum()))
    return np.r_[0.0, curve["fp"] / negatives], np.r_[0.0, curve["recall"]]


def _plot_histograms(labels: np.ndarray, scores: np.ndarray, threshold: float, out: Path
                     ) -> None:
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(5.5, 4))
    bins = np.linspace(0, 1, 51).tolist()
    for value, name in ((0, "legitimate"), (1, "fraud")):
        axis.hist(scores[labels == value], bins=bins, alpha=0.6, density=True,
                  label=f"{name} ({int(np.sum(labels == value)):,})")
    axis.axvline(threshold, color="red", lw=1, label="threshold")
    axis.set(xlabel="fraud score", ylabel="density (log)", yscale="log",
             title="scores per class (validation)")
    axis.legend(fontsize=8)
    plots.save_figure(fig, out)


def _plot_cost(curve: dict[str, np.ndarray], costs: np.ndarray, threshold: float,
               settings: dict[str, Any], out: Path) -> None:
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(5.5, 4))
    axis.plot(curve["threshold"], costs)
    axis.axvline(threshold, color="red", lw=1, label=f"chosen ({settings['threshold']})")
    axis.set(xlabel="threshold", ylabel="expected cost per 1,000 rows",
             title=f"missed fraud costs {settings['cost_missed_fraud']:g}, "
                   f"false alarm {settings['cost_false_alarm']:g}")
    axis.legend(fontsize=8)
    plots.save_figure(fig, out)
