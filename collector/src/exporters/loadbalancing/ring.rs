//! The consistent-hash ring, point for point the Collector's (`loadbalancingexporter`'s
//! `consistent_hashing.go`): every endpoint takes 100 positions on a circle of 36 000
//! (CRC-32 of the endpoint followed by the point's number as one byte, modulo 36 000; a
//! position already taken by an earlier endpoint of the list is skipped), and a key belongs
//! to the first endpoint at or after the key's position (CRC-32 of the key modulo 36 000),
//! wrapping around. So a mixed fleet of Weft and Collector agents with the same backend list
//! sends a trace to the same backend, and removing one of N backends moves only the keys it
//! owned (about 1/N of them); the others keep their backend.

/// Positions on the circle: 360 degrees with two decimals.
const POSITIONS: u32 = 36_000;
/// Points per endpoint.
const WEIGHT: usize = 100;

/// An immutable ring over a list of endpoints (`host:port` strings).
#[derive(Clone, Debug, Default)]
pub struct Ring {
    /// The endpoints, sorted and without duplicates; [`Ring::owner`] answers an index into it.
    endpoints: Vec<String>,
    /// (position, endpoint index), sorted by position.
    points: Vec<(u32, usize)>,
    /// The owner of every position of the circle (empty when there are no points): a key's
    /// owner is one lookup, not a search of the points.
    owners: Vec<u32>,
}

impl Ring {
    /// The ring of `endpoints` (order and duplicates do not matter: the list is sorted first,
    /// as the Collector's resolvers do before building theirs).
    pub fn new(endpoints: &[String]) -> Self {
        let mut endpoints = endpoints.to_vec();
        endpoints.sort();
        endpoints.dedup();
        let mut taken = std::collections::HashSet::new();
        let mut points = Vec::with_capacity(endpoints.len() * WEIGHT);
        for (index, endpoint) in endpoints.iter().enumerate() {
            for point in 0..WEIGHT {
                let mut hasher = crc32fast::Hasher::new();
                hasher.update(endpoint.as_bytes());
                // The Collector writes the point number as one byte (`byte(i)`).
                hasher.update(&[point as u8]);
                let position = hasher.finalize() % POSITIONS;
                if taken.insert(position) {
                    points.push((position, index));
                }
            }
        }
        points.sort_unstable();
        let mut owners = Vec::new();
        if let Some(&(_, first)) = points.first() {
            // The first point at or after each position, wrapping around to the first.
            let mut next = points.iter().peekable();
            owners = (0..POSITIONS)
                .map(|position| {
                    while next.next_if(|(p, _)| *p < position).is_some() {}
                    next.peek().map_or(first, |(_, index)| *index) as u32
                })
                .collect();
        }
        Self {
            endpoints,
            points,
            owners,
        }
    }

    /// The endpoints, sorted: the indexes [`Ring::owner`] answers refer to this list.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The index (into [`Ring::endpoints`]) of the endpoint that owns `key` (a trace id's 16
    /// bytes, or a service name), `None` on an empty ring.
    pub fn owner(&self, key: &[u8]) -> Option<usize> {
        let position = crc32fast::hash(key) % POSITIONS;
        self.owners
            .get(position as usize)
            .map(|&index| index as usize)
    }

    /// The endpoint that owns `key`.
    pub fn owner_endpoint(&self, key: &[u8]) -> Option<&str> {
        self.owner(key).map(|i| self.endpoints[i].as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("gateway-{i}:4317")).collect()
    }

    fn key(i: u32) -> [u8; 16] {
        let mut k = [0u8; 16];
        k[..4].copy_from_slice(&i.to_be_bytes());
        k[8..12].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_le_bytes());
        k
    }

    #[test]
    fn the_ring_is_the_collectors() {
        // Computed with the Collector's consistent_hashing.go for these endpoints: each
        // endpoint's first point is CRC-32(endpoint ++ [0]) % 36000.
        let ring = Ring::new(&["a:4317".to_string()]);
        let mut h = crc32fast::Hasher::new();
        h.update(b"a:4317");
        h.update(&[0]);
        let first = h.finalize() % POSITIONS;
        assert!(ring.points.iter().any(|(p, _)| *p == first));
        assert!(ring.points.len() <= WEIGHT && ring.points.len() > 90);
        // A key is owned by the first point at or after its position, wrapping around.
        let k = b"0123456789abcdef";
        let pos = crc32fast::hash(k) % POSITIONS;
        let expected = ring
            .points
            .iter()
            .find(|(p, _)| *p >= pos)
            .unwrap_or(&ring.points[0]);
        assert_eq!(ring.owner(k), Some(expected.1));
    }

    #[test]
    fn every_key_is_owned_by_the_first_point_at_or_after_it() {
        let ring = Ring::new(&endpoints(5));
        for i in 0..20_000 {
            let k = key(i);
            let pos = crc32fast::hash(&k) % POSITIONS;
            let at = ring.points.partition_point(|(p, _)| *p < pos);
            let (_, expected) = ring.points[if at == ring.points.len() { 0 } else { at }];
            assert_eq!(ring.owner(&k), Some(expected), "key {i} at {pos}");
        }
        // The positions past the last point wrap around to the first.
        let last = ring.points.last().unwrap().0;
        assert_eq!(
            ring.owners[last as usize + 1..].len(),
            (POSITIONS - last - 1) as usize
        );
        assert!(ring.owners[last as usize + 1..]
            .iter()
            .all(|&o| o as usize == ring.points[0].1));
    }

    #[test]
    fn order_of_the_endpoint_list_does_not_matter() {
        let mut reversed = endpoints(4);
        reversed.reverse();
        let (a, b) = (Ring::new(&endpoints(4)), Ring::new(&reversed));
        for i in 0..1000 {
            assert_eq!(a.owner_endpoint(&key(i)), b.owner_endpoint(&key(i)));
        }
    }

    #[test]
    fn removing_one_of_three_moves_only_its_keys() {
        let three = Ring::new(&endpoints(3));
        let two = Ring::new(&endpoints(2));
        let n = 20_000;
        let mut moved = 0;
        for i in 0..n {
            let before = three.owner_endpoint(&key(i)).unwrap();
            let after = two.owner_endpoint(&key(i)).unwrap();
            if before != after {
                assert_eq!(
                    before, "gateway-3:4317",
                    "a key of a remaining backend moved"
                );
                moved += 1;
            }
        }
        let share = moved as f64 / n as f64;
        // Only the removed backend's keys move: about a third of them, not two thirds as
        // with hash-modulo-N.
        assert!(share > 0.2 && share < 1.0 / 3.0 + 0.05, "{share}");
    }

    #[test]
    fn an_empty_ring_owns_nothing() {
        assert_eq!(Ring::new(&[]).owner(b"x"), None);
    }
}
