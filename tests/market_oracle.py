"""Test oracle for Market-1501's evaluation: a literal, per-rank port of
Zheng et al.'s official MATLAB code (`compute_AP.m`, and the good/junk rule
of `evaluation.m`; docs/evaluation.md). It walks the ranking one gallery image
at a time and shares nothing with evaluation/market.py (no closed-form
AP, no vectorised ranks), so the two can only agree if both follow the rule.

compute_AP.m (MATLAB, 1-based `n`):

    old_recall = 0; old_precision = 1.0; ap = 0; intersect_size = 0;
    j = 0; good_now = 0; njunk = 0;
    for n = 1:length(index)
        flag = 0;
        if ~isempty(find(good_image == index(n), 1))
            cmc(n-njunk:end) = 1; flag = 1; good_now = good_now+1;
        end
        if ~isempty(find(junk_image == index(n), 1))
            njunk = njunk + 1; continue;
        end
        if flag == 1, intersect_size = intersect_size + 1; end
        recall = intersect_size/ngood;
        precision = intersect_size/(j + 1);
        ap = ap + (recall - old_recall)*((old_precision+precision)/2);
        old_recall = recall; old_precision = precision; j = j+1;
        if good_now == ngood, return; end
    end
"""
import numpy as np


def compute_ap(good_image, junk_image, index, rule="trapezoid"):
    """(ap, cmc) of one query, `index` = gallery indices best first.
    rule "trapezoid" is compute_AP.m; "step" is the same walk adding
    (recall − old_recall) · precision (the step-wise AP of later libraries).
    A query without good images gets AP 0 and no hit (compute_AP.m would
    divide 0 by 0; the package counts such a query as 0)."""
    good, junk = set(int(g) for g in good_image), set(int(j) for j in junk_image)
    cmc = np.zeros(len(index))
    ngood = len(good)
    if ngood == 0:
        return 0.0, cmc
    old_recall, old_precision, ap = 0.0, 1.0, 0.0
    intersect_size, j, good_now, njunk = 0, 0, 0, 0
    for n in range(1, len(index) + 1):
        flag = False
        if int(index[n - 1]) in good:
            cmc[n - njunk - 1:] = 1
            flag = True
            good_now += 1
        if int(index[n - 1]) in junk:
            njunk += 1
            continue
        if flag:
            intersect_size += 1
        recall = intersect_size / ngood
        precision = intersect_size / (j + 1)
        if rule == "trapezoid":
            ap += (recall - old_recall) * ((old_precision + precision) / 2)
        else:
            ap += (recall - old_recall) * precision
        old_recall, old_precision = recall, precision
        j += 1
        if good_now == ngood:
            break
    return ap, cmc


def evaluate(dist, q_pids, q_cams, g_pids, g_cams, rule="trapezoid", similarity=False):
    """(cmc, mAP, per-query AP) as evaluation.m computes them: rank by
    distance ascending (or score descending), ties in gallery order (MATLAB's
    sort is stable); good = same id, other camera; junk = id −1, and same id
    in the same camera."""
    dist = np.asarray(dist, np.float64)
    g_pids, g_cams = np.asarray(g_pids), np.asarray(g_cams)
    cmc = np.zeros(dist.shape[1])
    aps = np.zeros(len(q_pids))
    for k in range(len(q_pids)):
        index = np.argsort(-dist[k] if similarity else dist[k], kind="stable")
        same_id = g_pids == q_pids[k]
        same_cam = g_cams == q_cams[k]
        good_index = np.flatnonzero(same_id & ~same_cam)
        junk_index = np.concatenate([np.flatnonzero(g_pids == -1), np.flatnonzero(same_id & same_cam)])
        aps[k], c = compute_ap(good_index, junk_index, index, rule)
        cmc += c
    return cmc / len(q_pids), float(np.mean(aps)), aps
