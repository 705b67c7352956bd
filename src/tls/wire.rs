//! A TLS connection as a [`Wire`]: rustls over the connection's [`Socket`], so that the
//! connection layer, its limits and its timeouts run unchanged on the HTTPS port.
//!
//! The handshake is not a separate step: it runs inside the first reads, on the connection's
//! own thread and under the same deadline as the wait for a request head (`--request-timeout`).
//! A client that trickles its ClientHello, sends garbage or never finishes is therefore cut off
//! exactly like a slow plain-HTTP client, and while it handshakes it counts as waiting for a
//! head, so the connection limit may reclaim its slot. How a handshake failed is counted in
//! [`HandshakeTally`] and logged at debug level only: scanners hitting the port are common and
//! not news.
//!
//! rustls needs `&mut` access, the `Wire` is shared (`&self`): the session sits under a lock
//! that the connection's thread alone takes in practice. `shutdown` and `abort` go to the
//! socket without the lock, so another thread can still end a connection blocked in a read.
//!
//! Writes are encrypted and sent in pieces of [`WRITE_PIECE_BYTES`] under one deadline for the
//! whole answer, so `--write-timeout` bounds a frame over TLS as it does over plain TCP. Not
//! the whole answer at once: a frame encrypted whole would be a second copy of it for every
//! HTTPS viewer, held as long as a slow viewer takes, outside the memory budget that counts
//! the one frame all plain viewers share.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use rustls::{AlertDescription, ServerConnection};

use crate::http::input::Wire;
use crate::http::socket::Socket;
use crate::https::{HandshakeFailure, HandshakeTally};

/// The first byte of every TLS record that starts a handshake (RFC 8446 §5.1).
const HANDSHAKE_RECORD: u8 = 0x16;
/// An encryption buffer that grew past this is given back after use (a piece of an answer with
/// its records' overhead stays under it).
const KEPT_BUFFER_BYTES: usize = 80 * 1024;
/// How much of an answer is encrypted before it is sent: four TLS records of 16 KiB.
const WRITE_PIECE_BYTES: usize = 64 * 1024;

pub struct TlsWire {
    socket: Socket,
    session: Mutex<Session>,
    tally: Arc<HandshakeTally>,
}

struct Session {
    tls: ServerConnection,
    /// Encrypted bytes waiting for the socket.
    outgoing: Vec<u8>,
    /// Whether the handshake's outcome has been counted.
    settled: bool,
    /// Whether any byte has arrived yet (to tell TLS from plain HTTP and probes).
    heard: bool,
}

impl TlsWire {
    pub fn new(socket: Socket, mut tls: ServerConnection, tally: Arc<HandshakeTally>) -> TlsWire {
        // Writes are cut into pieces here (see the module docs), each sent before the next is
        // encrypted, so rustls's own cap on buffered output is never what limits them.
        tls.set_buffer_limit(None);
        TlsWire {
            socket,
            session: Mutex::new(Session {
                tls,
                outgoing: Vec::new(),
                settled: false,
                heard: false,
            }),
            tally,
        }
    }

    /// Sends what rustls has to send (handshake messages, alerts, records).
    fn flush(&self, session: &mut Session) -> io::Result<()> {
        self.flush_by(session, self.socket.write_deadline())
    }

    /// Sends what rustls has to send by `deadline`.
    fn flush_by(&self, session: &mut Session, deadline: Instant) -> io::Result<()> {
        while session.tls.wants_write() {
            session.tls.write_tls(&mut session.outgoing)?;
        }
        if session.outgoing.is_empty() {
            return Ok(());
        }
        let sent = self.socket.write_all_by(&session.outgoing, deadline);
        session.outgoing.clear();
        if session.outgoing.capacity() > KEPT_BUFFER_BYTES {
            session.outgoing = Vec::new();
        }
        sent
    }

    /// Counts a failed handshake once, and logs it for those who look (debug).
    fn fail(&self, session: &mut Session, why: HandshakeFailure, detail: &dyn std::fmt::Display) {
        if !session.settled {
            session.settled = true;
            self.tally.failed(why);
            log::debug!("TLS handshake failed ({}): {detail}", why.label());
        }
    }

    /// Counts the handshake as done once it is.
    fn note_progress(&self, session: &mut Session) {
        if !session.settled && !session.tls.is_handshaking() {
            session.settled = true;
            self.tally.completed();
        }
    }
}

/// Reads for rustls from the socket, by the read's deadline.
struct DeadlineReader<'a> {
    socket: &'a Socket,
    deadline: Instant,
    first_byte: Option<u8>,
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let count = self.socket.read_by(out, self.deadline)?;
        if count > 0 && self.first_byte.is_none() {
            self.first_byte = Some(out[0]);
        }
        Ok(count)
    }
}

/// Why a rustls error ended a handshake.
fn failure_of(error: &rustls::Error) -> HandshakeFailure {
    match error {
        rustls::Error::AlertReceived(
            AlertDescription::UnknownCA
            | AlertDescription::BadCertificate
            | AlertDescription::CertificateUnknown,
        ) => HandshakeFailure::UnknownCa,
        rustls::Error::AlertReceived(_) => HandshakeFailure::Alert,
        _ => HandshakeFailure::Protocol,
    }
}

impl Wire for TlsWire {
    fn read_by(&self, out: &mut [u8], deadline: Instant) -> io::Result<usize> {
        let mut guard = self.session.lock();
        let session = &mut *guard;
        loop {
            match session.tls.reader().read(out) {
                Ok(count) => return Ok(count),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                // The peer closed without close_notify: for HTTP/1.1 framing that is just
                // the end of the connection.
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(error) => return Err(error),
            }
            let mut reader = DeadlineReader {
                socket: &self.socket,
                deadline,
                first_byte: None,
            };
            let received = match session.tls.read_tls(&mut reader) {
                Ok(count) => count,
                Err(error) => {
                    let why = if error.kind() == io::ErrorKind::TimedOut {
                        HandshakeFailure::Timeout
                    } else {
                        HandshakeFailure::Eof
                    };
                    self.fail(session, why, &error);
                    return Err(error);
                }
            };
            if received == 0 {
                self.fail(session, HandshakeFailure::Eof, &"connection closed");
                return Ok(0);
            }
            if !session.heard {
                session.heard = true;
                if reader.first_byte != Some(HANDSHAKE_RECORD) {
                    self.fail(session, HandshakeFailure::NotTls, &"not a TLS handshake");
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "not TLS"));
                }
            }
            if let Err(error) = session.tls.process_new_packets() {
                // Tell the client why (an alert), best effort: it may be gone.
                let _ = self.flush(session);
                self.fail(session, failure_of(&error), &error);
                return Err(io::Error::new(io::ErrorKind::InvalidData, error));
            }
            self.note_progress(session);
            self.flush(session)?;
        }
    }

    fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        let mut guard = self.session.lock();
        let session = &mut *guard;
        if session.tls.is_handshaking() {
            // The connection layer writes only after reading a request, so only an answer
            // to a connection that never completed its handshake can get here.
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "TLS handshake not complete",
            ));
        }
        let deadline = self.socket.write_deadline();
        for piece in bytes.chunks(WRITE_PIECE_BYTES) {
            session.tls.writer().write_all(piece)?;
            self.flush_by(session, deadline)?;
        }
        Ok(())
    }

    fn shutdown(&self, how: Shutdown) {
        self.socket.shutdown(how);
    }

    fn abort(&self) {
        self.socket.abort();
    }
}

impl Drop for TlsWire {
    fn drop(&mut self) {
        // A connection reclaimed by the limit, or ended from outside, mid-handshake.
        let session = self.session.get_mut();
        if !session.settled {
            self.tally.failed(if session.heard {
                HandshakeFailure::Eof
            } else {
                HandshakeFailure::Timeout
            });
            log::debug!("TLS connection closed before its handshake finished");
        }
    }
}
