//! The two duration histograms `spanmetrics` records: explicit buckets, and the OpenTelemetry
//! base-2 exponential histogram (positive values only: durations are never negative).

use std::sync::Arc;

use weft_proto::metrics::v1::exponential_histogram_data_point::Buckets;

/// Counts per explicit bucket: bucket `i` holds values in `(bounds[i-1], bounds[i]]`, the
/// last one everything above the last bound (the OTLP layout).
#[derive(Clone, Debug)]
pub struct Explicit {
    bounds: Arc<[f64]>,
    pub counts: Vec<u64>,
    pub count: u64,
    pub sum: f64,
}

impl Explicit {
    pub fn new(bounds: Arc<[f64]>) -> Self {
        Self {
            counts: vec![0; bounds.len() + 1],
            bounds,
            count: 0,
            sum: 0.0,
        }
    }

    pub fn record(&mut self, value: f64) {
        let bucket = self.bounds.partition_point(|b| *b < value);
        self.counts[bucket] += 1;
        self.count += 1;
        self.sum += value;
    }

    /// Adds `other` (same bounds) into this one.
    pub fn merge(&mut self, other: &Explicit) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum += other.sum;
    }

    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }
}

/// The highest scale the specification defines; histograms start there and lower it as the
/// range of recorded values needs more than `max_size` buckets.
pub const MAX_SCALE: i32 = 20;
/// The lowest: at -10 one bucket covers the whole range of doubles.
pub const MIN_SCALE: i32 = -10;

/// A base-2 exponential histogram of positive values with at most `max_size` buckets.
#[derive(Clone, Debug)]
pub struct Exponential {
    max_size: usize,
    pub scale: i32,
    pub zero_count: u64,
    /// The bucket index of `counts[0]`.
    pub offset: i32,
    pub counts: Vec<u64>,
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

/// The bucket of `value` (> 0, finite) at `scale`: bucket `i` holds `(base^i, base^(i+1)]`
/// with `base = 2^(2^-scale)`, as the specification maps them.
pub fn bucket_index(value: f64, scale: i32) -> i32 {
    // frexp: value = fraction * 2^exponent with fraction in [0.5, 1).
    let bits = value.to_bits();
    let raw_exponent = ((bits >> 52) & 0x7ff) as i32;
    let mantissa = bits & ((1u64 << 52) - 1);
    let (exponent, exact_power) = if raw_exponent == 0 {
        // Subnormal: normalise.
        let shift = mantissa.leading_zeros() as i32 - 11;
        (-1022 - shift, mantissa.is_power_of_two())
    } else {
        (raw_exponent - 1023, mantissa == 0)
    };
    if scale <= 0 {
        // Powers of two are the upper (inclusive) bound of the bucket below.
        let index = if exact_power { exponent - 1 } else { exponent };
        return index >> -scale;
    }
    if exact_power {
        return (exponent << scale) - 1;
    }
    let scale_factor = f64::from(1u32 << scale) / std::f64::consts::LN_2;
    (value.ln() * scale_factor).ceil() as i32 - 1
}

impl Exponential {
    pub fn new(max_size: usize) -> Self {
        Self {
            max_size: max_size.max(2),
            scale: MAX_SCALE,
            zero_count: 0,
            offset: 0,
            counts: Vec::new(),
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    pub fn record(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        if value <= 0.0 || !value.is_finite() {
            // Zero durations (and anything that is not a positive finite number, which
            // durations never are) count as zero.
            self.zero_count += 1;
            return;
        }
        let index = bucket_index(value, self.scale);
        self.add(index, 1, self.scale);
    }

    /// Adds `n` to the bucket `index` at `at_scale` (>= this histogram's scale), lowering
    /// the scale first when the bucket would not fit in `max_size`.
    fn add(&mut self, index: i32, n: u64, at_scale: i32) {
        let mut index = index >> (at_scale - self.scale);
        if self.counts.is_empty() {
            self.offset = index;
            self.counts.push(n);
            return;
        }
        let (lo, hi) = (self.offset, self.offset + self.counts.len() as i32 - 1);
        let (mut new_lo, mut new_hi) = (lo.min(index), hi.max(index));
        let mut change = 0;
        while (new_hi - new_lo + 1) as usize > self.max_size && self.scale - change > MIN_SCALE {
            change += 1;
            new_lo >>= 1;
            new_hi >>= 1;
        }
        if change > 0 {
            self.downscale(change);
            index >>= change;
        }
        if index < self.offset {
            let grow = (self.offset - index) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = index;
        }
        let at = (index - self.offset) as usize;
        if at >= self.counts.len() {
            self.counts.resize(at + 1, 0);
        }
        self.counts[at] += n;
    }

    /// Lowers the scale by `change`, merging neighbouring buckets.
    fn downscale(&mut self, change: i32) {
        if change <= 0 {
            return;
        }
        self.scale -= change;
        if self.counts.is_empty() {
            return;
        }
        let new_offset = self.offset >> change;
        let last = (self.offset + self.counts.len() as i32 - 1) >> change;
        let mut merged = vec![0u64; (last - new_offset + 1) as usize];
        for (i, c) in self.counts.iter().enumerate() {
            let index = (self.offset + i as i32) >> change;
            merged[(index - new_offset) as usize] += c;
        }
        self.offset = new_offset;
        self.counts = merged;
    }

    /// Adds `other` into this one, at the lower of the two scales.
    pub fn merge(&mut self, other: &Exponential) {
        if other.count == 0 {
            return;
        }
        if other.scale < self.scale {
            self.downscale(self.scale - other.scale);
        }
        for (i, c) in other.counts.iter().enumerate() {
            if *c > 0 {
                self.add(other.offset + i as i32, *c, other.scale);
            }
        }
        self.zero_count += other.zero_count;
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The positive buckets in OTLP form.
    pub fn positive(&self) -> Buckets {
        Buckets {
            offset: self.offset,
            bucket_counts: self.counts.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_buckets_are_upper_inclusive() {
        let mut h = Explicit::new(Arc::from(vec![1.0, 10.0]));
        for v in [0.5, 1.0, 1.5, 10.0, 11.0] {
            h.record(v);
        }
        assert_eq!(h.counts, [2, 2, 1]);
        assert_eq!((h.count, h.sum), (5, 24.0));
        let copy = h.clone();
        h.merge(&copy);
        assert_eq!(h.counts, [4, 4, 2]);
    }

    #[test]
    fn bucket_indexes_follow_the_specification() {
        // Scale 0: bucket i is (2^i, 2^(i+1)].
        assert_eq!(bucket_index(1.0, 0), -1);
        assert_eq!(bucket_index(1.5, 0), 0);
        assert_eq!(bucket_index(2.0, 0), 0);
        assert_eq!(bucket_index(2.1, 0), 1);
        assert_eq!(bucket_index(0.25, 0), -3);
        // Negative scales merge 2^-scale of those.
        assert_eq!(bucket_index(1000.0, -2), 2); // 2^9.97 → index 9 at scale 0 → 9 >> 2
                                                 // Positive scales: at scale 1 bucket i is (sqrt2^i, sqrt2^(i+1)].
        assert_eq!(bucket_index(1.5, 1), 1);
        assert_eq!(bucket_index(2.0, 1), 1);
        assert_eq!(bucket_index(2.0_f64.sqrt() * 1.0001, 1), 1);
        assert_eq!(bucket_index(4.0, 3), 15);
        // Subnormals are not lost.
        assert_eq!(bucket_index(f64::MIN_POSITIVE / 2.0, 0), -1024);
        for scale in -3..=6 {
            for v in [0.003, 0.7, 1.0, 3.3, 17.0, 250_000.0] {
                let i = bucket_index(v, scale);
                let base = 2f64.powf(2f64.powi(-scale));
                let (lo, hi) = (base.powi(i), base.powi(i + 1));
                assert!(
                    lo < v * (1.0 + 1e-12) && v <= hi * (1.0 + 1e-12),
                    "{v} at {scale}: {i}"
                );
            }
        }
    }

    #[test]
    fn the_scale_drops_to_keep_max_size_buckets_and_every_value_is_counted() {
        let mut h = Exponential::new(8);
        let values = [0.0, 1.0, 2.0, 3.0, 100.0, 1_000.0, 65_000.0, 0.001];
        for v in values {
            h.record(v);
        }
        assert!(h.counts.len() <= 8, "{h:?}");
        assert!(h.scale < MAX_SCALE);
        assert_eq!(h.zero_count, 1);
        assert_eq!(h.counts.iter().sum::<u64>() + h.zero_count, h.count);
        assert_eq!(h.count, values.len() as u64);
        // Every value sits in the bucket its index says at the final scale.
        for v in values.iter().filter(|v| **v > 0.0) {
            let i = bucket_index(*v, h.scale) - h.offset;
            assert!(i >= 0 && (i as usize) < h.counts.len() && h.counts[i as usize] > 0);
        }
        assert_eq!((h.min, h.max), (0.0, 65_000.0));
    }

    #[test]
    fn merging_brings_both_to_the_lower_scale() {
        let mut fine = Exponential::new(160);
        fine.record(3.0);
        fine.record(3.1);
        let mut coarse = Exponential::new(4);
        for v in [0.01, 5.0, 90.0, 4_000.0] {
            coarse.record(v);
        }
        let mut merged = fine.clone();
        merged.merge(&coarse);
        assert_eq!(merged.scale, coarse.scale);
        assert_eq!(merged.count, 6);
        assert_eq!(merged.counts.iter().sum::<u64>(), 6);
        assert!((merged.sum - (3.0 + 3.1 + 0.01 + 5.0 + 90.0 + 4_000.0)).abs() < 1e-9);
    }
}
