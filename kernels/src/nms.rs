//! Greedy non-maximum suppression over scored boxes, hard and soft (Gaussian), and the
//! per-class / per-batch selection of a combined detector head.
//!
//! Orderings are reproduced exactly, because they decide which of two equal-score boxes wins:
//! the single-class loop pops candidates by (score descending, index ascending), a total
//! order, so any priority queue gives the same result. The per-class loop of the combined
//! variant orders by score alone on a binary heap and the final merge sorts with an unstable
//! introsort, so ties there follow the exact sequence of swaps of the GNU C++ library's
//! `std::priority_queue` / `std::sort`; [`cxx`] ports those algorithms step by step.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Intersection over union of boxes `a` and `b` (`[y1, x1, y2, x2]`, corners in any order).
/// Zero when either box has no positive area; NaN coordinates give NaN.
#[inline]
pub fn iou(a: &[f32], b: &[f32]) -> f32 {
    let (ay0, ay1) = (cmin(a[0], a[2]), cmax(a[0], a[2]));
    let (ax0, ax1) = (cmin(a[1], a[3]), cmax(a[1], a[3]));
    let (by0, by1) = (cmin(b[0], b[2]), cmax(b[0], b[2]));
    let (bx0, bx1) = (cmin(b[1], b[3]), cmax(b[1], b[3]));
    let area_a = (ay1 - ay0) * (ax1 - ax0);
    let area_b = (by1 - by0) * (bx1 - bx0);
    if area_a <= 0.0 || area_b <= 0.0 {
        return 0.0;
    }
    let ih = cmax(cmin(ay1, by1) - cmax(ay0, by0), 0.0);
    let iw = cmax(cmin(ax1, bx1) - cmax(ax0, bx0), 0.0);
    let inter = ih * iw;
    inter / (area_a + area_b - inter)
}

/// `std::min(a, b)` / Eigen `mini`: `b < a ? b : a` (NaN propagation as in C++, unlike
/// `f32::min`).
#[inline]
fn cmin(a: f32, b: f32) -> f32 {
    if b < a {
        b
    } else {
        a
    }
}

/// `std::max(a, b)`: `a < b ? b : a`.
#[inline]
fn cmax(a: f32, b: f32) -> f32 {
    if a < b {
        b
    } else {
        a
    }
}

/// Parameters of [`greedy_nms`]. Scores and thresholds are in the score type, held as f32;
/// `round` rounds an f32 to that type (identity for f32, through f16 for half scores), applied
/// after every arithmetic step as the score type's own arithmetic would.
#[derive(Debug, Clone, Copy)]
pub struct NmsParams {
    /// Most boxes selected.
    pub max_output: usize,
    /// A candidate whose similarity to a selected box is above this is suppressed.
    pub similarity_threshold: f32,
    /// Only candidates with a score above this are considered (also after soft decay).
    pub score_threshold: f32,
    /// Soft-NMS Gaussian sigma; 0 for hard suppression.
    pub soft_nms_sigma: f32,
    /// Rounds to the score type.
    pub round: fn(f32) -> f32,
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    index: usize,
    score: f32,
    suppress_begin: usize,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    /// Greater = popped first: higher score, then lower index. Scores compare as C++ `<`/`==`
    /// do (0.0 == -0.0); NaN never enters the queue.
    fn cmp(&self, other: &Self) -> Ordering {
        if self.score < other.score {
            Ordering::Less
        } else if self.score > other.score {
            Ordering::Greater
        } else {
            other.index.cmp(&self.index)
        }
    }
}

/// Greedy NMS: selects box indices in decreasing score order, dropping (hard) or decaying
/// (soft, `exp(-0.5 * sim^2 / sigma)`) candidates by their similarity to already selected
/// boxes. Returns the selected indices and their (possibly decayed) scores.
///
/// `similarity(i, j)` is the overlap of boxes `i` and `j` (IoU or a given matrix).
pub fn greedy_nms(
    scores: &[f32],
    p: &NmsParams,
    similarity: impl Fn(usize, usize) -> f32,
) -> (Vec<usize>, Vec<f32>) {
    let round = p.round;
    let mut queue: BinaryHeap<Candidate> = scores
        .iter()
        .enumerate()
        .filter(|(_, &s)| s > p.score_threshold)
        .map(|(index, &score)| Candidate {
            index,
            score,
            suppress_begin: 0,
        })
        .collect();
    let soft = p.soft_nms_sigma > 0.0;
    let scale = if soft {
        round(-0.5 / p.soft_nms_sigma)
    } else {
        0.0
    };
    let weight = |sim: f32| {
        let w = round(round(round(scale * sim) * sim).exp());
        if soft || sim <= p.similarity_threshold {
            w
        } else {
            0.0
        }
    };
    let mut selected: Vec<usize> = Vec::new();
    let mut selected_scores: Vec<f32> = Vec::new();
    while selected.len() < p.max_output {
        let Some(mut c) = queue.pop() else { break };
        let original = c.score;
        let mut hard = false;
        for j in (c.suppress_begin..selected.len()).rev() {
            let sim = round(similarity(c.index, selected[j]));
            c.score = round(c.score * weight(sim));
            if !soft && sim > p.similarity_threshold {
                hard = true;
                break;
            }
            if c.score <= p.score_threshold {
                break;
            }
        }
        c.suppress_begin = selected.len();
        if !hard {
            if c.score == original {
                selected.push(c.index);
                selected_scores.push(c.score);
                continue;
            }
            if c.score > p.score_threshold {
                queue.push(c);
            }
        }
    }
    (selected, selected_scores)
}

/// One detection of [`combined_nms_class`]: box index, score, class, box corners.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// Anchor index, or -1 for an empty slot.
    pub index: i64,
    /// Score (`-inf` for an empty slot).
    pub score: f32,
    /// Class, or -1 for an empty slot.
    pub class: i64,
    /// `[y1, x1, y2, x2]` as given.
    pub bbox: [f32; 4],
}

impl Detection {
    /// The empty slot the combined head starts from.
    pub const EMPTY: Detection = Detection {
        index: -1,
        score: f32::NEG_INFINITY,
        class: -1,
        bbox: [0.0; 4],
    };
}

/// Hard NMS of one class of one batch entry, writing up to `out.len()` detections in selection
/// order into `out` (slots past the last selection are left as they are).
///
/// `boxes` is `[num_boxes, q, 4]` of this batch entry, `scores` `[num_boxes, num_classes]`;
/// `class_box` is the box column used (`class` when `q > 1`, else 0).
///
/// # Panics
/// If `boxes` or `scores` are shorter than their shapes say.
#[allow(clippy::too_many_arguments)]
pub fn combined_nms_class(
    boxes: &[f32],
    q: usize,
    class_box: usize,
    scores: &[f32],
    num_classes: usize,
    class: usize,
    score_threshold: f32,
    iou_threshold: f32,
    out: &mut [Detection],
) {
    #[derive(Clone, Copy)]
    struct C {
        index: usize,
        score: f32,
    }
    let num_boxes = scores.len() / num_classes.max(1);
    let less = |a: &C, b: &C| a.score < b.score;
    let mut heap: Vec<C> = Vec::new();
    for i in 0..num_boxes {
        let s = scores[i * num_classes + class];
        if s > score_threshold {
            heap.push(C { index: i, score: s });
            cxx::push_heap(&mut heap, &less);
        }
    }
    let corners = |i: usize| {
        let o = (i * q + class_box) * 4;
        &boxes[o..o + 4]
    };
    let mut selected: Vec<usize> = Vec::new();
    while selected.len() < out.len() && !heap.is_empty() {
        cxx::pop_heap(&mut heap, &less);
        let c = heap.pop().expect("heap is not empty");
        let b = corners(c.index);
        let keep = !selected
            .iter()
            .rev()
            .any(|&j| iou(b, corners(j)) > iou_threshold);
        if keep {
            out[selected.len()] = Detection {
                index: c.index as i64,
                score: c.score,
                class: class as i64,
                bbox: [b[0], b[1], b[2], b[3]],
            };
            selected.push(c.index);
        }
    }
}

/// Sorts a batch entry's detections by descending score with the GNU C++ library's unstable
/// `std::sort`, so equal scores end up in the order TF's CPU kernel leaves them.
pub fn sort_detections(d: &mut [Detection]) {
    cxx::sort(d, &|a: &Detection, b: &Detection| b.score < a.score);
}

/// Step-by-step ports of libstdc++'s heap and introsort algorithms (bits/stl_heap.h,
/// bits/stl_algo.h), whose handling of equal elements TF's outputs inherit.
pub mod cxx {
    /// `std::push_heap`: sifts the last element up.
    pub fn push_heap<T: Copy>(v: &mut [T], less: &impl Fn(&T, &T) -> bool) {
        if let Some(&value) = v.last() {
            sift_up(v, v.len() - 1, 0, value, less);
        }
    }

    /// `std::pop_heap`: moves the top to the end and restores the heap on the rest.
    pub fn pop_heap<T: Copy>(v: &mut [T], less: &impl Fn(&T, &T) -> bool) {
        let n = v.len();
        if n > 1 {
            let value = v[n - 1];
            v[n - 1] = v[0];
            adjust_heap(&mut v[..n - 1], 0, value, less);
        }
    }

    /// `std::__push_heap`.
    fn sift_up<T: Copy>(
        v: &mut [T],
        mut hole: usize,
        top: usize,
        value: T,
        less: &impl Fn(&T, &T) -> bool,
    ) {
        while hole > top {
            let parent = (hole - 1) / 2;
            if !less(&v[parent], &value) {
                break;
            }
            v[hole] = v[parent];
            hole = parent;
        }
        v[hole] = value;
    }

    /// `std::__adjust_heap` over all of `v`.
    fn adjust_heap<T: Copy>(
        v: &mut [T],
        mut hole: usize,
        value: T,
        less: &impl Fn(&T, &T) -> bool,
    ) {
        let len = v.len();
        let top = hole;
        let mut child = hole;
        while len >= 1 && child < (len - 1) / 2 {
            child = 2 * (child + 1);
            if less(&v[child], &v[child - 1]) {
                child -= 1;
            }
            v[hole] = v[child];
            hole = child;
        }
        if len >= 2 && len.is_multiple_of(2) && child == (len - 2) / 2 {
            child = 2 * (child + 1);
            v[hole] = v[child - 1];
            hole = child - 1;
        }
        sift_up(v, hole, top, value, less);
    }

    fn make_heap<T: Copy>(v: &mut [T], less: &impl Fn(&T, &T) -> bool) {
        let len = v.len();
        if len < 2 {
            return;
        }
        let mut parent = (len - 2) / 2;
        loop {
            let value = v[parent];
            adjust_heap(v, parent, value, less);
            if parent == 0 {
                return;
            }
            parent -= 1;
        }
    }

    /// `std::__partial_sort(first, last, last)`: heap select + sort_heap.
    fn heap_sort<T: Copy>(v: &mut [T], less: &impl Fn(&T, &T) -> bool) {
        make_heap(v, less);
        let mut n = v.len();
        while n > 1 {
            pop_heap(&mut v[..n], less);
            n -= 1;
        }
    }

    const THRESHOLD: usize = 16;

    /// `std::sort`: introsort (median-of-three quicksort, heap sort past 2*log2(n) levels),
    /// then insertion sort.
    pub fn sort<T: Copy>(v: &mut [T], less: &impl Fn(&T, &T) -> bool) {
        if v.len() > 1 {
            let depth = 2 * (usize::BITS - 1 - v.len().leading_zeros()) as usize;
            introsort_loop(v, depth, less);
            final_insertion_sort(v, less);
        }
    }

    fn introsort_loop<T: Copy>(mut v: &mut [T], mut depth: usize, less: &impl Fn(&T, &T) -> bool) {
        while v.len() > THRESHOLD {
            if depth == 0 {
                heap_sort(v, less);
                return;
            }
            depth -= 1;
            let cut = partition_pivot(v, less);
            let (lo, hi) = v.split_at_mut(cut);
            introsort_loop(hi, depth, less);
            v = lo;
        }
    }

    fn partition_pivot<T: Copy>(v: &mut [T], less: &impl Fn(&T, &T) -> bool) -> usize {
        let n = v.len();
        let mid = n / 2;
        move_median_to_first(v, 1, mid, n - 1, less);
        unguarded_partition(v, 1, n, less)
    }

    fn move_median_to_first<T: Copy>(
        v: &mut [T],
        a: usize,
        b: usize,
        c: usize,
        less: &impl Fn(&T, &T) -> bool,
    ) {
        let pick = if less(&v[a], &v[b]) {
            if less(&v[b], &v[c]) {
                b
            } else if less(&v[a], &v[c]) {
                c
            } else {
                a
            }
        } else if less(&v[a], &v[c]) {
            a
        } else if less(&v[b], &v[c]) {
            c
        } else {
            b
        };
        v.swap(0, pick);
    }

    /// `std::__unguarded_partition` with the pivot at index 0.
    fn unguarded_partition<T: Copy>(
        v: &mut [T],
        mut first: usize,
        mut last: usize,
        less: &impl Fn(&T, &T) -> bool,
    ) -> usize {
        loop {
            while less(&v[first], &v[0]) {
                first += 1;
            }
            last -= 1;
            while less(&v[0], &v[last]) {
                last -= 1;
            }
            if first >= last {
                return first;
            }
            v.swap(first, last);
            first += 1;
        }
    }

    fn final_insertion_sort<T: Copy>(v: &mut [T], less: &impl Fn(&T, &T) -> bool) {
        if v.len() > THRESHOLD {
            insertion_sort(&mut v[..THRESHOLD], less);
            for i in THRESHOLD..v.len() {
                unguarded_linear_insert(v, i, less);
            }
        } else {
            insertion_sort(v, less);
        }
    }

    fn insertion_sort<T: Copy>(v: &mut [T], less: &impl Fn(&T, &T) -> bool) {
        for i in 1..v.len() {
            if less(&v[i], &v[0]) {
                let val = v[i];
                v.copy_within(0..i, 1);
                v[0] = val;
            } else {
                unguarded_linear_insert(v, i, less);
            }
        }
    }

    fn unguarded_linear_insert<T: Copy>(
        v: &mut [T],
        mut last: usize,
        less: &impl Fn(&T, &T) -> bool,
    ) {
        let val = v[last];
        while less(&val, &v[last - 1]) {
            v[last] = v[last - 1];
            last -= 1;
        }
        v[last] = val;
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn sort_matches_std_on_distinct_keys() {
            let mut state = 12345u64;
            for n in [0usize, 1, 2, 5, 16, 17, 40, 300, 1000] {
                let v: Vec<i64> = (0..n)
                    .map(|_| {
                        state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                        (state >> 33) as i64 % 50
                    })
                    .collect();
                let mut a = v.clone();
                sort(&mut a, &|x: &i64, y: &i64| x < y);
                let mut b = v;
                b.sort();
                assert_eq!(a, b);
            }
        }

        #[test]
        fn heap_pops_in_order() {
            let less = |a: &i32, b: &i32| a < b;
            let mut h = Vec::new();
            for x in [5, 1, 9, 3, 9, 7, 2, 8] {
                h.push(x);
                push_heap(&mut h, &less);
            }
            let mut out = Vec::new();
            while !h.is_empty() {
                pop_heap(&mut h, &less);
                out.push(h.pop().unwrap());
            }
            assert_eq!(out, vec![9, 9, 8, 7, 5, 3, 2, 1]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(max_output: usize, iou: f32, score: f32, sigma: f32) -> NmsParams {
        NmsParams {
            max_output,
            similarity_threshold: iou,
            score_threshold: score,
            soft_nms_sigma: sigma,
            round: |x| x,
        }
    }

    /// Port of TF's `NonMaxSuppressionV2OpTest.TestSelectFromThreeClusters`.
    #[test]
    fn select_from_three_clusters() {
        let boxes = [
            0., 0., 1., 1., 0., 0.1, 1., 1.1, 0., -0.1, 1., 0.9, 0., 10., 1., 11., 0., 10.1, 1.,
            11.1, 0., 100., 1., 101.,
        ];
        let scores = [0.9, 0.75, 0.6, 0.95, 0.5, 0.3];
        let (sel, _) = greedy_nms(&scores, &params(3, 0.5, f32::MIN, 0.0), |i, j| {
            iou(&boxes[i * 4..i * 4 + 4], &boxes[j * 4..j * 4 + 4])
        });
        assert_eq!(sel, vec![3, 0, 5]);
    }

    #[test]
    fn equal_scores_select_lower_index_first() {
        let boxes = [0., 0., 1., 1., 5., 5., 6., 6., 0., 0., 1., 1.];
        let (sel, _) = greedy_nms(&[0.5, 0.5, 0.5], &params(3, 0.5, f32::MIN, 0.0), |i, j| {
            iou(&boxes[i * 4..i * 4 + 4], &boxes[j * 4..j * 4 + 4])
        });
        assert_eq!(sel, vec![0, 1]);
    }

    #[test]
    fn iou_of_zero_area_and_flipped_boxes() {
        assert_eq!(iou(&[0., 0., 0., 1.], &[0., 0., 1., 1.]), 0.0);
        assert_eq!(iou(&[1., 1., 0., 0.], &[0., 0., 1., 1.]), 1.0);
    }
}
