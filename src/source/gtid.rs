//! MariaDB GTID positions, as a live replica tracks them to follow a failover.
//!
//! A MariaDB GTID is `domain-server-sequence`; a server's position in its replication stream
//! is the last GTID of each domain (`0-1-42,1-2-7`), the form `@slave_connect_state`,
//! `BINLOG_GTID_POS()` and `@@gtid_binlog_pos` use. The replica source keeps, next to each
//! checkpoint's binlog position, the GTID position of that binlog position (a [`Token`]), so
//! that a state dir can be resumed on another server of the same replication topology (a
//! promoted replica) by GTID, where the old server's file and offset mean nothing.
//!
//! MySQL's GTID sets (`uuid:1-42`) are not tracked: a MySQL state dir is resumed only on the
//! server it was read from.

use std::collections::BTreeMap;
use std::fmt;

use super::binlog::HEADER;

/// The MariaDB GTID event type.
const MARIADB_GTID: u8 = 162;

/// One MariaDB GTID.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Gtid {
    /// The replication domain.
    pub domain: u32,
    /// The server that first wrote the transaction.
    pub server: u32,
    /// Its sequence number in the domain.
    pub seq: u64,
}

impl Gtid {
    /// The GTID of a MariaDB GTID event (`ev` whole: header and body): `seq_no(8)
    /// domain_id(4)` after the header, the server id in the header.
    pub fn of_event(ev: &[u8]) -> Option<Gtid> {
        if ev.get(4) != Some(&MARIADB_GTID) {
            return None;
        }
        let server = u32::from_le_bytes(ev.get(5..9)?.try_into().ok()?);
        let seq = u64::from_le_bytes(ev.get(HEADER..HEADER + 8)?.try_into().ok()?);
        let domain = u32::from_le_bytes(ev.get(HEADER + 8..HEADER + 12)?.try_into().ok()?);
        Some(Gtid {
            domain,
            server,
            seq,
        })
    }
}

impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

/// A MariaDB GTID position: the last GTID of each replication domain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GtidPosition {
    last: BTreeMap<u32, (u32, u64)>,
}

impl GtidPosition {
    /// Parses `domain-server-seq[,..]` (empty: no GTID yet).
    pub fn parse(s: &str) -> Result<GtidPosition, String> {
        let mut last = BTreeMap::new();
        for g in s.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            let n: Vec<&str> = g.split('-').collect();
            let bad = || format!("`{g}` is not a MariaDB GTID (domain-server-sequence)");
            if n.len() != 3 {
                return Err(bad());
            }
            let domain = n[0].parse().map_err(|_| bad())?;
            let server = n[1].parse().map_err(|_| bad())?;
            let seq = n[2].parse().map_err(|_| bad())?;
            if last.insert(domain, (server, seq)).is_some() {
                return Err(format!("`{s}` names domain {domain} twice"));
            }
        }
        Ok(GtidPosition { last })
    }

    /// The position after the transaction `g`.
    pub fn apply(&mut self, g: Gtid) {
        self.last.insert(g.domain, (g.server, g.seq));
    }

    /// No GTID yet.
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

impl fmt::Display for GtidPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (d, (s, n))) in self.last.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}-{s}-{n}")?;
        }
        Ok(())
    }
}

/// What a checkpoint keeps next to a binlog partition's position: the server epoch (counted
/// up at each change of server, it is the high half of every version's file field, so that
/// every change read from a new server is newer than every change read from the old) and the
/// GTID position of the saved binlog position, where it is known.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Token {
    /// The server epoch: 0 on the first server, one more at each failover.
    pub epoch: u32,
    /// The GTID position of the saved binlog position.
    pub gtid: Option<GtidPosition>,
}

impl Token {
    /// `epoch=E` and, when known, `;gtid=POSITION`.
    pub fn encode(&self) -> String {
        match &self.gtid {
            Some(g) => format!("epoch={};gtid={g}", self.epoch),
            None => format!("epoch={}", self.epoch),
        }
    }

    /// Reads [`Token::encode`]'s form.
    pub fn decode(s: &str) -> Result<Token, String> {
        let mut token = Token::default();
        for part in s.split(';') {
            match part.split_once('=') {
                Some(("epoch", e)) => {
                    token.epoch = e
                        .parse()
                        .map_err(|_| format!("bad epoch in resume token `{s}`"))?
                }
                Some(("gtid", g)) => token.gtid = Some(GtidPosition::parse(g)?),
                _ => return Err(format!("unknown part `{part}` in resume token `{s}`")),
            }
        }
        Ok(token)
    }
}

/// The GTID position at each transaction boundary the reader handed out and the engine has
/// not yet committed: the position at the last committed boundary, then each later
/// transaction's GTID with the boundary it ends at.
#[derive(Clone, Debug)]
pub struct Tracker {
    committed: GtidPosition,
    /// `(end position, GTID)` of each transaction read since, in order.
    later: std::collections::VecDeque<(u64, Gtid)>,
}

impl Tracker {
    /// Tracking from a boundary whose GTID position is `at`.
    pub fn new(at: GtidPosition) -> Tracker {
        Tracker {
            committed: at,
            later: Default::default(),
        }
    }

    /// A transaction with GTID `g` was read; the stream goes on at `end`.
    pub fn read(&mut self, end: u64, g: Gtid) {
        self.later.push_back((end, g));
    }

    /// The GTID position at boundary `position` (one the reader handed out, at or after the
    /// last committed one).
    pub fn at(&self, position: u64) -> GtidPosition {
        let mut p = self.committed.clone();
        for (end, g) in &self.later {
            if *end > position {
                break;
            }
            p.apply(*g);
        }
        p
    }

    /// Everything before `position` is committed: forgets what is no longer needed.
    pub fn commit(&mut self, position: u64) {
        while let Some((end, g)) = self.later.front().copied() {
            if end > position {
                break;
            }
            self.committed.apply(g);
            self.later.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_print_and_advance() {
        let mut p = GtidPosition::parse("1-2-7, 0-1-42").unwrap();
        assert_eq!(p.to_string(), "0-1-42,1-2-7");
        p.apply(Gtid {
            domain: 0,
            server: 3,
            seq: 43,
        });
        assert_eq!(p.to_string(), "0-3-43,1-2-7");
        assert!(GtidPosition::parse("").unwrap().is_empty());
        assert!(GtidPosition::parse("0-1").is_err());
        assert!(GtidPosition::parse("0-1-2,0-1-3").is_err());
        assert!(GtidPosition::parse("a-1-2").is_err());
    }

    #[test]
    fn tokens_round_trip() {
        for t in [
            Token::default(),
            Token {
                epoch: 3,
                gtid: Some(GtidPosition::parse("0-1-42,5-9-1").unwrap()),
            },
            Token {
                epoch: 1,
                gtid: Some(GtidPosition::default()),
            },
        ] {
            assert_eq!(Token::decode(&t.encode()).unwrap(), t, "{}", t.encode());
        }
        assert!(Token::decode("epoch=x").is_err());
        assert!(Token::decode("epoch=1;file=3").is_err());
    }

    #[test]
    fn the_gtid_event_is_read_from_its_bytes() {
        let mut ev = vec![0u8; HEADER + 13 + 4];
        ev[4] = MARIADB_GTID;
        ev[5..9].copy_from_slice(&7u32.to_le_bytes());
        ev[HEADER..HEADER + 8].copy_from_slice(&99u64.to_le_bytes());
        ev[HEADER + 8..HEADER + 12].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(Gtid::of_event(&ev).unwrap().to_string(), "2-7-99");
        ev[4] = 33;
        assert!(Gtid::of_event(&ev).is_none());
    }

    #[test]
    fn the_tracker_gives_the_position_at_each_boundary() {
        let g = |seq| Gtid {
            domain: 0,
            server: 1,
            seq,
        };
        let mut t = Tracker::new(GtidPosition::parse("0-1-10").unwrap());
        t.read(100, g(11));
        t.read(200, g(12));
        t.read(300, g(13));
        assert_eq!(t.at(50).to_string(), "0-1-10");
        assert_eq!(t.at(100).to_string(), "0-1-11");
        assert_eq!(t.at(250).to_string(), "0-1-12");
        assert_eq!(t.at(u64::MAX).to_string(), "0-1-13");
        t.commit(200);
        assert_eq!(t.later.len(), 1);
        assert_eq!(t.at(200).to_string(), "0-1-12");
        assert_eq!(t.at(300).to_string(), "0-1-13");
    }
}
