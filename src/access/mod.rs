//! Who may do what: the relay's optional credentials and the check every request passes.
//!
//! Off by default, because the relay's home is a LAN where phones and Home Assistant just
//! connect. Each kind of access is closed only when a credential for it is configured, so a
//! user can protect viewing without touching the phones, or the other way round:
//! - pushing needs the global push token or the device's own token (`--device-token`) once
//!   either kind is set; a device without a token of its own then needs the global one;
//! - viewing (streams, snapshots, status, metrics, the dashboard) needs the Basic login
//!   (`--view-user`/`--view-password`) or the view token once either is set;
//! - forgetting a device (`DELETE /api/devices/{id}`) needs the admin token; without one it is
//!   allowed only while the relay has no credentials at all, so that turning on access control
//!   never leaves deletion open by accident.
//!
//! The admin token also passes wherever a push or view credential is asked for. The push page
//! and `/healthz` stay open: the page holds no secret and is what a phone opens first.
//!
//! Secrets are compared in constant time (for a given secret), and never printed: their
//! `Debug` and the `--check` output show `***`.
//!
//! The layer: the policy here, what a request presents (`credentials`), and the CORS answer
//! (`cors`). It reads request heads (`http::head`) and writes header lines (`http::Headers`),
//! and speaks of refusals in the common vocabulary (`refusal`); it knows nothing of streams,
//! frames or sockets.

pub mod cors;
pub mod credentials;

use std::fmt;

use crate::refusal::{Extra, Reason, Refusal};

use crate::access::credentials::Presented;
use crate::relay::device_id::DeviceId;

/// A configured password or token. Printing it never shows the text.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub const MAX_LEN: usize = 256;

    /// A token: 1 to 256 letters, digits and `-._~`, the characters that need no escaping
    /// anywhere a token goes: a URL (`?token=`, typed by hand), a command line, an environment
    /// file (systemd strips quotes and backslashes there), a UCI option, and the log masking,
    /// which ends a token at the first character outside a URL's query value.
    pub fn new(text: &str) -> Result<Secret, &'static str> {
        Secret::checked(text, |b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
            .ok_or("must be 1 to 256 letters, digits and -._~")
    }

    /// A password for Basic auth: 1 to 256 visible ASCII characters. It travels base64-encoded
    /// in a header, or percent-encoded in a URL's userinfo, never in a query.
    pub fn password(text: &str) -> Result<Secret, &'static str> {
        Secret::checked(text, |b| b.is_ascii_graphic())
            .ok_or("must be 1 to 256 visible ASCII characters (no spaces)")
    }

    fn checked(text: &str, allowed: impl Fn(u8) -> bool) -> Option<Secret> {
        let fits = (1..=Secret::MAX_LEN).contains(&text.len()) && text.bytes().all(allowed);
        fits.then(|| Secret(text.to_string()))
    }

    /// Whether `presented` is this secret, taking the same time whatever `presented` holds
    /// (it depends only on this secret's length), so timing reveals no matching prefix.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        let mut difference = u8::from(presented.len() != expected.len());
        for (index, byte) in expected.iter().enumerate() {
            let other = presented.get(index).copied().unwrap_or(0);
            difference |= std::hint::black_box(byte ^ other);
        }
        difference == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The credentials the relay was configured with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub push_token: Option<Secret>,
    pub device_tokens: Vec<(DeviceId, Secret)>,
    /// Basic auth for viewers: user name and password.
    pub view_login: Option<(String, Secret)>,
    pub view_token: Option<Secret>,
    pub admin_token: Option<Secret>,
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need<'a> {
    Nothing,
    Push(&'a DeviceId),
    View,
    Admin,
}

/// The answer to missing or wrong credentials: the same words whatever was missing or wrong,
/// and whether or not the device exists.
fn unauthenticated(challenge: &'static str) -> Refusal {
    Refusal::new(
        Reason::Unauthorized,
        "credentials required: a token or a login",
    )
    .with(Extra::Challenge(challenge))
}

/// Deletion asked for while access control is on but no admin token is set.
fn admin_disabled() -> Refusal {
    Refusal::new(
        Reason::Forbidden,
        "deleting devices needs --admin-token, which is not set",
    )
}

/// The challenge for Basic auth; browsers, VLC and ffmpeg answer it with the login.
pub const BASIC_CHALLENGE: &str = "Basic realm=\"streampump\", charset=\"UTF-8\"";
/// The challenge where only a token is accepted (RFC 6750).
pub const BEARER_CHALLENGE: &str = "Bearer realm=\"streampump\"";

impl Policy {
    /// Whether any credential is configured at all.
    pub fn is_open(&self) -> bool {
        self.push_token.is_none()
            && self.device_tokens.is_empty()
            && self.view_login.is_none()
            && self.view_token.is_none()
            && self.admin_token.is_none()
    }

    /// Whether pushing needs a token (the dashboard's push link then has a placeholder).
    pub fn push_is_protected(&self) -> bool {
        self.push_token.is_some() || !self.device_tokens.is_empty()
    }

    /// Whether `token` is one a phone should push with as `device`: the push token or the
    /// device's own token. The dashboard puts such a token in the push link and its QR code.
    /// Not the admin token, although it pushes too: a phone keeps its link in its history, and
    /// the admin token also forgets devices and changes their settings.
    pub fn token_may_push(&self, device: &DeviceId, token: &str) -> bool {
        let token = token.as_bytes();
        let global = self.push_token.as_ref().is_some_and(|t| t.matches(token));
        let own = self
            .device_tokens
            .iter()
            .any(|(id, secret)| id == device && secret.matches(token));
        global | own
    }

    /// Whether viewing needs credentials.
    pub fn view_is_protected(&self) -> bool {
        self.view_login.is_some() || self.view_token.is_some()
    }

    /// Lets the request through or says why not. Every candidate secret is compared, without
    /// stopping at the first match, so the time taken does not tell which one matched.
    pub fn check(&self, need: Need, presented: &Presented) -> Result<(), Refusal> {
        let admin = self.admin_token.as_ref().is_some_and(|t| presented.has(t));
        let granted = match need {
            Need::Nothing => true,
            Need::Push(device) => {
                if !self.push_is_protected() {
                    return Ok(());
                }
                let global = self.push_token.as_ref().is_some_and(|t| presented.has(t));
                let own = self
                    .device_tokens
                    .iter()
                    .filter(|(id, _)| id == device)
                    .any(|(_, token)| presented.has(token));
                global | own | admin
            }
            Need::View => {
                if !self.view_is_protected() {
                    return Ok(());
                }
                let login = self
                    .view_login
                    .as_ref()
                    .is_some_and(|(user, password)| presented.has_login(user, password));
                let token = self.view_token.as_ref().is_some_and(|t| presented.has(t));
                login | token | admin
            }
            Need::Admin => {
                if self.admin_token.is_none() {
                    return if self.is_open() {
                        Ok(())
                    } else {
                        Err(admin_disabled())
                    };
                }
                admin
            }
        };
        if granted {
            return Ok(());
        }
        let challenge = match need {
            Need::View if self.view_login.is_some() => BASIC_CHALLENGE,
            _ => BEARER_CHALLENGE,
        };
        Err(unauthenticated(challenge))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> Secret {
        Secret::new(text).unwrap()
    }

    fn id(text: &str) -> DeviceId {
        DeviceId::parse(text).unwrap()
    }

    fn bearer(token: &str) -> Presented {
        Presented::from_parts(Some(&format!("Bearer {token}")), None, None)
    }

    /// A Basic login; the header values were encoded by Python's base64 module.
    fn basic(user: &str, password: &str) -> Presented {
        let encoded = match (user, password) {
            ("ha", "pass:word") => "aGE6cGFzczp3b3Jk",
            ("any", "viewtok") => "YW55OnZpZXd0b2s=",
            ("ha", "wrong") => "aGE6d3Jvbmc=",
            ("other", "pass:word") => "b3RoZXI6cGFzczp3b3Jk",
            _ => unreachable!("no encoding written down for {user}:{password}"),
        };
        Presented::from_parts(Some(&format!("Basic {encoded}")), None, None)
    }

    #[test]
    fn a_token_goes_into_a_push_link_when_it_is_a_push_or_own_token() {
        let policy = Policy {
            push_token: Some(secret("push")),
            device_tokens: vec![(id("cam_1"), secret("own"))],
            view_token: Some(secret("view")),
            admin_token: Some(secret("admin")),
            ..Policy::default()
        };
        assert!(policy.token_may_push(&id("cam_1"), "push"));
        assert!(policy.token_may_push(&id("cam_1"), "own"));
        assert!(!policy.token_may_push(&id("cam_1"), "admin"));
        assert!(!policy.token_may_push(&id("cam_2"), "own"));
        assert!(!policy.token_may_push(&id("cam_1"), "view"));
        assert!(!policy.token_may_push(&id("cam_1"), "pus"));
    }

    #[test]
    fn secrets_compare_exactly_and_never_print() {
        let token = secret("s3cret-token");
        assert!(token.matches(b"s3cret-token"));
        assert!(!token.matches(b"s3cret-toke"));
        assert!(!token.matches(b"s3cret-token!"));
        assert!(!token.matches(b""));
        assert_eq!(format!("{token:?}"), "***");
        assert!(Secret::new("").is_err());
        assert!(Secret::new("has space").is_err());
        assert!(Secret::new(&"x".repeat(257)).is_err());
        assert!(Secret::new("caf\u{e9}").is_err());
        assert!(Secret::new("a'b").is_err());
        assert!(Secret::new("a+b").is_err());
        assert!(Secret::new("A-z_0.9~").is_ok());
        assert!(Secret::password("p'a:ss\\\"").is_ok());
        assert!(Secret::password("pa ss").is_err());
    }

    #[test]
    fn an_open_relay_lets_everything_through() {
        let policy = Policy::default();
        let nobody = Presented::default();
        for need in [Need::Push(&id("cam")), Need::View, Need::Admin] {
            assert_eq!(policy.check(need, &nobody), Ok(()));
        }
    }

    #[test]
    fn push_tokens_global_and_per_device() {
        let policy = Policy {
            push_token: Some(secret("global")),
            device_tokens: vec![(id("cam_01"), secret("own01"))],
            ..Policy::default()
        };
        let cam = id("cam_01");
        let other = id("cam_02");
        assert_eq!(policy.check(Need::Push(&cam), &bearer("global")), Ok(()));
        assert_eq!(policy.check(Need::Push(&cam), &bearer("own01")), Ok(()));
        assert_eq!(policy.check(Need::Push(&other), &bearer("global")), Ok(()));
        assert!(policy.check(Need::Push(&other), &bearer("own01")).is_err());
        assert!(policy
            .check(Need::Push(&cam), &Presented::default())
            .is_err());
        // Viewing stays open: only pushing was protected.
        assert_eq!(policy.check(Need::View, &Presented::default()), Ok(()));
        // Deletion is closed once anything is protected and no admin token is set.
        assert_eq!(
            policy.check(Need::Admin, &bearer("global")),
            Err(admin_disabled())
        );
    }

    #[test]
    fn device_tokens_alone_close_pushing_for_every_device() {
        let policy = Policy {
            device_tokens: vec![(id("cam_01"), secret("own01"))],
            ..Policy::default()
        };
        assert_eq!(
            policy.check(Need::Push(&id("cam_09")), &Presented::default()),
            Err(unauthenticated(BEARER_CHALLENGE))
        );
    }

    #[test]
    fn viewing_takes_the_login_or_the_view_token() {
        let policy = Policy {
            view_login: Some(("ha".into(), Secret::password("pass:word").unwrap())),
            view_token: Some(secret("viewtok")),
            admin_token: Some(secret("admintok")),
            ..Policy::default()
        };
        assert_eq!(policy.check(Need::View, &basic("ha", "pass:word")), Ok(()));
        assert_eq!(policy.check(Need::View, &bearer("viewtok")), Ok(()));
        assert_eq!(policy.check(Need::View, &bearer("admintok")), Ok(()));
        // A token also works as the password of a Basic login, whatever the user name.
        assert_eq!(policy.check(Need::View, &basic("any", "viewtok")), Ok(()));
        assert_eq!(
            policy.check(Need::View, &basic("ha", "wrong")),
            Err(unauthenticated(BASIC_CHALLENGE))
        );
        assert!(policy
            .check(Need::View, &basic("other", "pass:word"))
            .is_err());
        assert!(policy.check(Need::Admin, &bearer("viewtok")).is_err());
        assert_eq!(policy.check(Need::Admin, &bearer("admintok")), Ok(()));
        // Pushing stays open: only viewing was protected.
        assert_eq!(
            policy.check(Need::Push(&id("x")), &Presented::default()),
            Ok(())
        );
    }
}
