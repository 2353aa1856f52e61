//! The replica's connection to a MySQL/MariaDB server, on the `mysql` crate: TCP or TLS,
//! every authentication plugin real servers default to, the few text queries at start, and
//! the binlog dump as a stream of raw events.
//!
//! - TLS ([`TlsMode`], `--mysql-ssl-mode`): `disabled`, `preferred` (the default, as in the
//!   `mysql` command-line client: TLS when the server offers it, its certificate unchecked,
//!   else plain TCP), `required` (TLS or fail, certificate unchecked), `verify-ca` (the
//!   certificate must chain to `--mysql-ssl-ca`, or to the bundled web roots without one) and
//!   `verify-identity` (and name the host).
//! - Authentication: whatever the server asks for among `mysql_native_password`,
//!   `caching_sha2_password` (MySQL 8's default; over plain TCP its full authentication
//!   fetches the server's RSA key), `client_ed25519` (MariaDB) and `mysql_clear_password`
//!   (only over TLS).
//! - The binlog: the `mysql` crate's `BinlogStream` parses each event; the bytes of the event
//!   as the server sent them (header, body and checksum) are put back together from it and
//!   checked against the header's length, so the decoder reads live events exactly as it
//!   reads a saved file's (it verifies the checksums itself).

use std::time::Duration;

use anyhow::bail;
use mysql::prelude::Queryable;
use mysql::{BinlogRequest, Conn, OptsBuilder, SslOpts};

#[cfg(doc)]
use super::replica::Flavor;
use super::replica::ReplicaConfig;

/// How the connection uses TLS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain TCP.
    Disabled,
    /// TLS when the server offers it (certificate not checked), else plain TCP.
    #[default]
    Preferred,
    /// TLS or fail; the certificate is not checked.
    Required,
    /// TLS with a certificate that chains to the CA (`--mysql-ssl-ca`).
    VerifyCa,
    /// As `VerifyCa`, and the certificate names the host.
    VerifyIdentity,
}

impl std::str::FromStr for TlsMode {
    type Err = String;

    fn from_str(s: &str) -> Result<TlsMode, String> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "disabled" => Ok(TlsMode::Disabled),
            "preferred" => Ok(TlsMode::Preferred),
            "required" => Ok(TlsMode::Required),
            "verify-ca" => Ok(TlsMode::VerifyCa),
            "verify-identity" => Ok(TlsMode::VerifyIdentity),
            _ => Err(format!(
                "`{s}` is not a TLS mode: disabled, preferred, required, verify-ca or \
                 verify-identity"
            )),
        }
    }
}

impl std::fmt::Display for TlsMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsMode::Disabled => "disabled",
            TlsMode::Preferred => "preferred",
            TlsMode::Required => "required",
            TlsMode::VerifyCa => "verify-ca",
            TlsMode::VerifyIdentity => "verify-identity",
        })
    }
}

/// A row of a text result set (`None`: NULL).
pub(crate) type TextRow = Vec<Option<String>>;

/// An authenticated client connection.
pub(crate) struct Session {
    conn: Conn,
    /// Whether it runs over TLS.
    pub(crate) tls: bool,
}

/// An error of a statement: the server's as "message (error code)", others as they are.
fn server_text(e: mysql::Error) -> String {
    match e {
        mysql::Error::MySqlError(e) => format!("{} (error {})", e.message, e.code),
        e => e.to_string(),
    }
}

/// A connection that cannot be made, as the user should read it.
fn refused(config: &ReplicaConfig, e: mysql::Error) -> anyhow::Error {
    use mysql::{DriverError, Error};
    let server = config.server();
    let user = &config.user;
    let ca = match &config.tls_ca {
        Some(ca) => format!(" and --mysql-ssl-ca {}", ca.display()),
        None => String::new(),
    };
    // rustls' refusals (an unknown issuer, a name mismatch) come as I/O errors.
    let text = e.to_string();
    if config.tls != TlsMode::Disabled
        && matches!(
            e,
            Error::IoError(_) | Error::CodecError(_) | Error::TlsError(_)
        )
        && (text.contains("certificate") || text.to_ascii_lowercase().contains("tls"))
    {
        let text = text
            .trim_start_matches("CodecError { IO error: `")
            .trim_end_matches("' }");
        return anyhow::anyhow!(
            "MySQL at {server}: TLS failed ({text}) with --mysql-ssl-mode {}{ca}",
            config.tls
        );
    }
    match e {
        Error::DriverError(DriverError::CouldNotConnect(Some((_, desc, _)))) => {
            anyhow::anyhow!("cannot connect to MySQL at {server}: {desc}")
        }
        Error::DriverError(DriverError::CouldNotConnect(None))
        | Error::DriverError(DriverError::ConnectTimeout) => anyhow::anyhow!(
            "cannot connect to MySQL at {server}: no answer within {:?}",
            config.connect_timeout
        ),
        Error::IoError(e) if e.kind() != std::io::ErrorKind::UnexpectedEof => {
            anyhow::anyhow!("cannot connect to MySQL at {server}: {e}")
        }
        Error::DriverError(DriverError::TlsNotSupported) => anyhow::anyhow!(
            "MySQL at {server} does not offer TLS, and --mysql-ssl-mode {} requires it (start \
             the server with ssl_cert/ssl_key, or use --mysql-ssl-mode preferred|disabled)",
            config.tls
        ),
        Error::DriverError(DriverError::UnknownAuthPlugin(p)) => anyhow::anyhow!(
            "MySQL at {server}: user {user} authenticates with {p}, which this client does not \
             support (mysql_native_password, caching_sha2_password, client_ed25519 and, over \
             TLS, mysql_clear_password are)"
        ),
        Error::DriverError(DriverError::CleartextPluginDisabled) => anyhow::anyhow!(
            "MySQL at {server}: user {user} authenticates with mysql_clear_password, which sends \
             the password in the clear: use --mysql-ssl-mode required (or stronger)"
        ),
        Error::TlsError(e) => anyhow::anyhow!(
            "MySQL at {server}: TLS failed ({e}) with --mysql-ssl-mode {}{ca}",
            config.tls
        ),
        e @ Error::MySqlError(_) => {
            anyhow::anyhow!("MySQL at {server} refused user {user}: {}", server_text(e))
        }
        other => {
            anyhow::anyhow!("MySQL at {server}: the handshake with user {user} failed: {other}")
        }
    }
}

impl Session {
    /// Connects and authenticates; errors name the server, the user and what to change.
    /// `read_timeout` bounds every read (the binlog stream's: a few heartbeat periods).
    pub(crate) fn open(
        config: &ReplicaConfig,
        read_timeout: Option<Duration>,
    ) -> anyhow::Result<Session> {
        let base = OptsBuilder::new()
            .ip_or_hostname(Some(config.host.clone()))
            .tcp_port(config.port)
            .user(Some(config.user.clone()))
            .pass(Some(config.password.clone()))
            // On loopback the crate would switch to the server's Unix socket: keep to TCP, so
            // that TLS and the user's host-based grants are what the user asked for.
            .prefer_socket(false)
            .tcp_connect_timeout(Some(config.connect_timeout))
            .read_timeout(read_timeout)
            .write_timeout(Some(Duration::from_secs(60)))
            .stmt_cache_size(0)
            // Binlog events are as large as a transaction's biggest row: take what the server
            // may send a replica (slave_max_allowed_packet, at most 1 GiB), not the server's
            // max_allowed_packet for clients (16 MB by default).
            .max_allowed_packet(Some(1 << 30));
        // The cleartext plugin sends the password as it is: only inside TLS.
        let tls = |ssl: SslOpts| base.clone().ssl_opts(ssl).enable_cleartext_plugin(true);
        let unchecked = SslOpts::default()
            .with_danger_accept_invalid_certs(true)
            .with_danger_skip_domain_validation(true);
        let verified = {
            let o = SslOpts::default().with_root_cert_path(config.tls_ca.clone());
            o.with_danger_skip_domain_validation(config.tls == TlsMode::VerifyCa)
        };
        let connect = |opts: OptsBuilder| Conn::new(opts).map_err(|e| refused(config, e));
        let (conn, over_tls) = match config.tls {
            TlsMode::Disabled => (connect(base.clone())?, false),
            TlsMode::Preferred => match Conn::new(tls(unchecked)) {
                Ok(c) => (c, true),
                Err(mysql::Error::DriverError(mysql::DriverError::TlsNotSupported)) => {
                    (connect(base.clone())?, false)
                }
                Err(e) => return Err(refused(config, e)),
            },
            TlsMode::Required => (connect(tls(unchecked))?, true),
            TlsMode::VerifyCa | TlsMode::VerifyIdentity => (connect(tls(verified))?, true),
        };
        Ok(Session {
            conn,
            tls: over_tls,
        })
    }

    /// Runs `sql`; the rows of its result set as text (none for a statement without one).
    pub(crate) fn query(&mut self, sql: &str) -> anyhow::Result<Vec<TextRow>> {
        let rows: Vec<mysql::Row> = self
            .conn
            .query(sql)
            .map_err(|e| anyhow::anyhow!(server_text(e)))?;
        Ok(rows
            .into_iter()
            .map(|r| {
                r.unwrap()
                    .into_iter()
                    .map(|v| match v {
                        mysql::Value::NULL => None,
                        mysql::Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
                    })
                    .collect()
            })
            .collect())
    }

    /// The first column of the first row of `sql`'s result (`None`: no row, or NULL).
    pub(crate) fn scalar(&mut self, sql: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .query(sql)?
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten()))
    }

    /// Runs `sql` in the binary protocol (typed values) and hands `f` each row; an error of
    /// `f` stops the read.
    pub(crate) fn rows(
        &mut self,
        sql: &str,
        mut f: impl FnMut(Vec<mysql::Value>) -> Result<(), String>,
    ) -> Result<(), String> {
        let result = self.conn.exec_iter(sql, ()).map_err(server_text)?;
        for row in result {
            f(row.map_err(server_text)?.unwrap())?;
        }
        Ok(())
    }

    /// Runs a statement without a result set.
    fn run(&mut self, sql: &str) -> anyhow::Result<()> {
        self.query(sql).map(drop)
    }

    /// Turns this connection into the binlog stream from `from` (see [`DumpFrom`]), asking
    /// for a heartbeat after `heartbeat` without events; `session` are the flavour's settings
    /// for the dump ([`Flavor::dump_session`]).
    pub(crate) fn binlog(
        mut self,
        session: &[String],
        server_id: u32,
        from: DumpFrom<'_>,
        heartbeat: Duration,
    ) -> anyhow::Result<EventStream> {
        // The server sends events with its own checksums once told the replica reads them.
        self.run("SET @master_binlog_checksum = @@global.binlog_checksum")?;
        self.run(&format!(
            "SET @master_heartbeat_period = {}",
            heartbeat.as_nanos().clamp(1_000_000, 4_294_967_000_000_000)
        ))?;
        for sql in session {
            self.run(sql)?;
        }
        let request = BinlogRequest::new(server_id);
        let request = match from {
            DumpFrom::Position { file, pos } => request
                .with_filename(file.as_bytes().to_vec())
                .with_pos(pos),
            DumpFrom::GtidSet(gtid) => {
                let sids = gtid
                    .split(',')
                    .map(|s| s.trim().parse::<mysql_common::packets::Sid<'static>>())
                    .collect::<Result<Vec<_>, _>>();
                let Ok(sids) = sids else {
                    bail!("`{gtid}` is not a MySQL GTID set");
                };
                request.with_use_gtid(true).with_sids(sids).with_pos(4u64)
            }
        };
        let stream = self
            .conn
            .get_binlog_stream(request)
            .map_err(|e| anyhow::anyhow!(server_text(e)))?;
        Ok(EventStream { stream })
    }
}

/// Where a dump starts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum DumpFrom<'a> {
    /// A file and offset (an empty file name: the oldest file the server has, or where the
    /// session's GTID settings say).
    Position { file: &'a str, pos: u32 },
    /// A MySQL GTID set (`COM_BINLOG_DUMP_GTID`: what the set does not contain).
    GtidSet(&'a str),
}

/// Why the next event could not be read.
#[derive(Debug)]
pub(crate) enum StreamError {
    /// The server sent an error packet: its code and text.
    Server { code: u16, message: String },
    /// The connection broke, timed out or the server ended the stream.
    Lost(String),
    /// The stream holds something that cannot be read (not retried).
    Invalid(String),
}

/// A server's binlog events, one at a time, as the bytes of the server's binlog file.
pub(crate) struct EventStream {
    stream: mysql::BinlogStream,
}

/// The length of an event's common header.
const HEADER: usize = 19;
const FORMAT_DESCRIPTION: u8 = 15;

impl EventStream {
    /// The next event's bytes: header, body and, where the server writes one, its checksum.
    pub(crate) fn next_event(&mut self) -> Result<Vec<u8>, StreamError> {
        // mysql_common panics on an event shorter than its header says (a read_exact unwrap).
        let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.stream.next()));
        let Ok(next) = next else {
            return Err(StreamError::Invalid(
                "an event shorter than its header says".into(),
            ));
        };
        let event = match next {
            None => {
                return Err(StreamError::Lost(
                    "the server ended the binlog stream".into(),
                ));
            }
            Some(Ok(e)) => e,
            Some(Err(mysql::Error::MySqlError(e))) => {
                return Err(StreamError::Server {
                    code: e.code,
                    message: e.message,
                });
            }
            Some(Err(mysql::Error::IoError(e))) => return Err(StreamError::Lost(e.to_string())),
            Some(Err(mysql::Error::CodecError(e))) => {
                return Err(StreamError::Lost(e.to_string()));
            }
            Some(Err(e)) => return Err(StreamError::Invalid(e.to_string())),
        };
        let h = event.header();
        let mut out = Vec::with_capacity(h.event_size() as usize);
        out.extend_from_slice(&h.timestamp().to_le_bytes());
        out.push(h.event_type_raw());
        out.extend_from_slice(&h.server_id().to_le_bytes());
        out.extend_from_slice(&h.event_size().to_le_bytes());
        out.extend_from_slice(&h.log_pos().to_le_bytes());
        out.extend_from_slice(&h.flags_raw().to_le_bytes());
        debug_assert_eq!(out.len(), HEADER);
        out.extend_from_slice(event.data());
        if h.event_type_raw() == FORMAT_DESCRIPTION {
            // The checksum algorithm's byte was cut from the body as a footer.
            match event.footer().get_checksum_alg() {
                Ok(Some(alg)) => out.push(alg as u8),
                Ok(None) => {}
                Err(e) => return Err(StreamError::Invalid(e.to_string())),
            }
        }
        if let Some(c) = event.checksum() {
            out.extend_from_slice(&c);
        }
        if out.len() != h.event_size() as usize {
            return Err(StreamError::Invalid(format!(
                "an event of type {} says it has {} bytes but came with {}",
                h.event_type_raw(),
                h.event_size(),
                out.len()
            )));
        }
        Ok(out)
    }
}
