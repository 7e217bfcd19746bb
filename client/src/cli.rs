//! The command line: clap's types for every command, flag and argument, and
//! nothing else. `main` parses a [`Cli`] and hands each command to `cmd`.
//!
//! Doc comments on fields and variants are the `--help` text (golden-tested
//! in `tests/cmd/`); those on the types themselves do not reach it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The whole command line: the connection flags, then one command.
#[derive(Parser)]
#[command(
    name = "breakglass",
    version,
    about = "breakglass: quorum break-glass access"
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) conn: Conn,
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

/// How to reach the daemon and who is calling: global flags every command accepts.
#[derive(Args, Clone)]
pub(crate) struct Conn {
    /// Daemon address (host:port).
    #[arg(
        long,
        global = true,
        env = "BREAKGLASS_DAEMON",
        default_value = "127.0.0.1:7443"
    )]
    pub(crate) daemon: String,
    /// CA certificate (PEM) that signed the daemon's certificate.
    #[arg(long, global = true, env = "BREAKGLASS_CA")]
    pub(crate) ca: Option<PathBuf>,
    /// Pin the daemon's certificate: `sha256:…` as printed by `breakglassd serve`.
    #[arg(long, global = true, env = "BREAKGLASS_TLS_FINGERPRINT")]
    pub(crate) tls_fingerprint: Option<String>,
    /// Name to check in the daemon's certificate (default: the host of --daemon).
    #[arg(long, global = true)]
    pub(crate) tls_server_name: Option<String>,
    /// Your OpenSSH ed25519 private key.
    #[arg(long, global = true, env = "BREAKGLASS_KEY")]
    pub(crate) key: Option<PathBuf>,
    /// Where call signatures come from: `key` (the --key file), `agent`
    /// (ssh-agent at SSH_AUTH_SOCK, the key named by --signing-key, default
    /// the --key's .pub) or `security-key` (a FIDO2 key handle, --signing-key,
    /// signed through ssh-keygen -Y sign: touch it, and enter its PIN if asked).
    #[arg(long, global = true, env = "BREAKGLASS_SIGN_WITH", default_value = "key", value_parser = ["key", "agent", "security-key"])]
    pub(crate) sign_with: String,
    /// With --sign-with agent: the .pub of the agent's key; with
    /// security-key: the handle file `ssh-keygen -t ed25519-sk` wrote.
    #[arg(long, global = true, env = "BREAKGLASS_SIGNING_KEY")]
    pub(crate) signing_key: Option<PathBuf>,
    /// Mutual TLS: your client certificate (PEM), when the daemon requires one.
    #[arg(long, global = true, env = "BREAKGLASS_CLIENT_CERT")]
    pub(crate) client_cert: Option<PathBuf>,
    /// Mutual TLS: the private key of your client certificate (PEM).
    #[arg(long, global = true, env = "BREAKGLASS_CLIENT_KEY")]
    pub(crate) client_key: Option<PathBuf>,
    /// Your id in the policy (default: found from your key).
    #[arg(long = "as", global = true)]
    pub(crate) as_id: Option<String>,
}

/// The top-level commands.
#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// Make an ssh-ed25519 key pair (PATH and PATH.pub) for use as a custodian or commander.
    Keygen {
        /// Where to write the private key.
        #[arg(long)]
        out: PathBuf,
        /// Comment in the public key.
        #[arg(long, default_value = "breakglass")]
        comment: String,
        /// Write the key unencrypted (otherwise a passphrase is asked, or taken from BREAKGLASS_PASSPHRASE).
        #[arg(long)]
        no_passphrase: bool,
    },
    /// Show the daemon: ids, authority key, threshold, custodians, commanders, scopes.
    Info {
        /// Print JSON for scripts (fields in the README, "Scripting").
        #[arg(long)]
        json: bool,
    },
    /// Print the authority public key A that downstream systems trust.
    Authority {
        /// Only the `TrustedUserCAKeys` line for sshd.
        #[arg(long, conflicts_with = "paseto")]
        ssh: bool,
        /// Only the PASERK `k4.public.…` key for token verifiers.
        #[arg(long)]
        paseto: bool,
    },
    /// Write the revocation list: an OpenSSH KRL for sshd's `RevokedKeys` and/or JSON for token verifiers.
    Revocations {
        /// Where to write the OpenSSH KRL.
        #[arg(long)]
        krl: Option<PathBuf>,
        /// Where to write the JSON list of revoked token ids.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Also list revoked credentials that have already expired (by default only
        /// those still valid, which is all a verifier needs).
        #[arg(long)]
        include_expired: bool,
    },
    /// Open, show, list or cancel requests.
    #[command(subcommand)]
    Request(RequestCmd),
    /// Custodians: submit, attest or check a share; fetch and confirm a new one after a rekey.
    #[command(subcommand)]
    Share(ShareCmd),
    /// Change the custodians, the threshold or the policy by quorum; the
    /// authority key stays the same.
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Fetch or verify a credential.
    #[command(subcommand)]
    Credential(CredentialCmd),
    /// How ready the quorum is: who proved their share lately (`share attest`),
    /// and whether at least a threshold did within the policy's `attest_every`.
    Readiness {
        /// One JSON object instead of text (fields in the README, "Scripting").
        #[arg(long)]
        json: bool,
        /// Exit with status 3 when the quorum is at risk (for cron and monitoring).
        #[arg(long)]
        require_ready: bool,
    },
    /// Export, verify or follow the tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Post-incident review: the timeline of one request from the audit log.
    Review {
        /// Request id.
        id: String,
        /// A self-contained HTML page with a timeline graphic instead of Markdown.
        #[arg(long)]
        html: bool,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Read the log from an export (JSON Lines) instead of the daemon; its
        /// chain (and trailer) are verified first.
        #[arg(long)]
        file: Option<PathBuf>,
        /// With --file: the daemon key D (hex, `breakglass info` prints it) to check
        /// the checkpoints and the export's signed trailer.
        #[arg(long, requires = "file", requires = "daemon_id")]
        daemon_key: Option<String>,
        /// With --file: the daemon id the checkpoints and the trailer must name.
        #[arg(long, requires = "daemon_key")]
        daemon_id: Option<String>,
        /// With --file: accept an export without its signed trailer (a cut-off
        /// tail, e.g. a removed revocation, cannot be detected; the page says so).
        #[arg(long, requires = "file")]
        allow_partial: bool,
        /// Render even a log that does not verify, under a banner saying so.
        #[arg(long)]
        force: bool,
    },
    /// Run a whole quorum unlock against a temporary daemon on loopback TLS; or,
    /// with --live, rehearse on the real daemon with the real custodians (nothing
    /// is minted), or verify a live drill's statement offline.
    Drill {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// A live drill on the daemon of --addr: open a request of kind drill (as a
        /// commander), wait for the real custodians to approve it, and keep the
        /// statement A signs at quorum. Needs --reason or --verify.
        #[arg(long)]
        live: bool,
        /// With --live: why, for the audit log and the custodians' screens.
        #[arg(long, requires = "live", conflicts_with = "verify")]
        reason: Option<String>,
        /// With --live --reason: write the drill statement here when it passes
        /// (default: print it).
        #[arg(long, requires = "reason")]
        out: Option<PathBuf>,
        /// With --live: verify this drill statement offline against --authority.
        #[arg(long, requires = "live", requires = "authority")]
        verify: Option<PathBuf>,
        /// With --verify: the authority key A (k4.public.…, ssh-ed25519 … or hex,
        /// from `breakglass authority`).
        #[arg(long, requires = "verify")]
        authority: Option<String>,
        /// With --verify: the daemon id the statement must be for.
        #[arg(long, requires = "verify")]
        daemon_id: Option<String>,
        /// Custodians to generate.
        #[arg(long, default_value_t = 5)]
        custodians: u8,
        /// Shares needed.
        #[arg(long, default_value_t = 3)]
        threshold: u8,
    },
    /// Print a shell completion script (e.g. `breakglass completions bash > /etc/bash_completion.d/breakglass`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to standard output (`breakglass man | man -l -`).
    Man,
}

/// `breakglass audit …`.
#[derive(Subcommand)]
pub(crate) enum AuditCmd {
    /// Recompute the hash chain and check every checkpoint signature; names the first bad entry.
    Verify {
        /// Verify an export (JSON Lines) offline instead of the daemon's log.
        #[arg(long)]
        file: Option<PathBuf>,
        /// With --file: the daemon key D (hex, `breakglass info` prints it) to check checkpoints.
        #[arg(long)]
        daemon_key: Option<String>,
        /// With --file: the daemon id the checkpoints must name.
        #[arg(long)]
        daemon_id: Option<String>,
        /// With --file: accept an export without its signed trailer (verifies only
        /// what is there; a cut-off tail cannot be detected).
        #[arg(long)]
        allow_partial: bool,
        /// Print JSON for scripts (fields in the README, "Scripting").
        #[arg(long)]
        json: bool,
    },
    /// Write the log as JSON Lines (one event per line) for a SIEM.
    Export {
        /// First entry.
        #[arg(long, default_value_t = 1)]
        since: u64,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Show the newest entries; with -f keep following.
    Tail {
        /// Keep printing new entries as they are committed.
        #[arg(short = 'f', long)]
        follow: bool,
        /// How many recent entries to show first.
        #[arg(short = 'n', long, default_value_t = 10)]
        lines: u64,
    },
}

/// `breakglass request …`.
#[derive(Subcommand)]
pub(crate) enum RequestCmd {
    /// Follow a request live: approvals, time left, outcome. Exits 0 only when the
    /// request unlocked: 3 expired, 4 cancelled, 5 lost the connection to the daemon.
    Watch {
        /// Request id.
        id: String,
        /// One JSON object per line per update, then a last line with the outcome.
        #[arg(long)]
        json: bool,
    },
    /// Ask for emergency access (commander).
    Open {
        /// Scope from the policy.
        #[arg(long)]
        scope: String,
        /// Why; reviewers will read this.
        #[arg(long)]
        reason: String,
        /// Credential lifetime, e.g. 30m.
        #[arg(long, default_value = "30m")]
        ttl: humantime::Duration,
        /// Your SSH public key to certify (default ~/.ssh/id_ed25519.pub when the scope mints SSH certificates).
        #[arg(long)]
        ssh_key: Option<PathBuf>,
    },
    /// Show one request.
    Show {
        /// Request id.
        id: String,
        /// Print JSON for scripts (fields in the README, "Scripting").
        #[arg(long)]
        json: bool,
    },
    /// List requests (collecting only, unless --all).
    List {
        /// Include closed requests.
        #[arg(long)]
        all: bool,
        /// Print JSON for scripts (fields in the README, "Scripting").
        #[arg(long)]
        json: bool,
    },
    /// Cancel a collecting request (its requester or a custodian).
    Cancel {
        /// Request id.
        id: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
}

/// `breakglass share …`.
#[derive(Subcommand)]
pub(crate) enum ShareCmd {
    /// Approve a request by submitting your share.
    Submit {
        /// Request id.
        id: String,
        /// Your share file from the ceremony.
        #[arg(long)]
        share: PathBuf,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Prove to the daemon that your key, passphrase and share file work, without
    /// unlocking anything: the share is sealed to a one-shot key, checked against
    /// your commitment, wiped, and recorded (readiness).
    Attest {
        /// Your share file.
        #[arg(long)]
        share: PathBuf,
        /// One JSON object (custodian, epoch, when, attestation id) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check that your key still opens your share file and that the file is genuine:
    /// its share matches its commitment and the daemon key D signed it.
    Check {
        /// Your share file.
        #[arg(long)]
        share: PathBuf,
        /// Without the daemon: decrypt, recompute the commitment and verify D's
        /// signature written in the file (compare D with --daemon-key).
        #[arg(long)]
        offline: bool,
        /// The daemon key D you expect (hex, `breakglass info` prints it): a file
        /// signed by any other key is refused.
        #[arg(long)]
        daemon_key: Option<String>,
        /// One JSON object (custodian, x, threshold, daemon and ceremony ids, epoch,
        /// daemon key, how the origin was proven) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// After a change dealt new shares: fetch your new share file (you are a
    /// custodian of the proposed policy), check it, and write it.
    Fetch {
        /// Change id.
        change: String,
        /// Where to write the share file (mode 0600; it stays encrypted to your key).
        #[arg(long)]
        out: PathBuf,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Prove your new share to the daemon; the last confirmation needed commits
    /// the new epoch.
    Confirm {
        /// Change id.
        change: String,
        /// Your new share file (from `share fetch`).
        #[arg(long)]
        share: PathBuf,
        /// The change after the confirmation as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `breakglass policy …`.
#[derive(Subcommand)]
pub(crate) enum PolicyCmd {
    /// Propose a new policy (a custodian or commander): the daemon validates it as
    /// `init` does and what it changes is shown before it is signed.
    Propose {
        /// The new policy file (TOML, as for `breakglassd init`).
        file: PathBuf,
        /// Why; the custodians who approve and the reviewers read this.
        #[arg(long)]
        reason: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// Print the change as JSON (fields in the README, "Scripting").
        #[arg(long)]
        json: bool,
    },
    /// Show a change: who proposed it, why, and every change it makes (computed here
    /// from the current and the proposed policy).
    Show {
        /// Change id (`chg-…`).
        id: String,
        /// Also print the whole proposed policy (canonical JSON).
        #[arg(long)]
        full: bool,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Approve a change with your current share (custodians of the current epoch).
    Approve {
        /// Change id.
        id: String,
        /// Your current share file.
        #[arg(long)]
        share: PathBuf,
        /// Also show the whole proposed policy (canonical JSON) before asking.
        #[arg(long)]
        full: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// Print the change after the approval as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a change before it commits (its proposer or a custodian of the current epoch).
    Cancel {
        /// Change id.
        id: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
        /// Print the change as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Where a change stands: approvals, and for a rekey who fetched and confirmed
    /// the new shares.
    Status {
        /// Change id.
        id: String,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
}

/// `breakglass credential …`.
#[derive(Subcommand)]
pub(crate) enum CredentialCmd {
    /// Fetch the credential of an unlocked request (requester).
    Fetch {
        /// Request id.
        id: String,
        /// Where to write the credential bundle (JSON, mode 0600).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The SSH public key the certificate is for; the certificate is written beside it as
        /// `…-cert.pub` so ssh uses it without flags (default ~/.ssh/id_ed25519.pub).
        #[arg(long)]
        ssh_key: Option<PathBuf>,
    },
    /// Revoke a credential before its expiry (its requester or a custodian).
    Revoke {
        /// Request id.
        id: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Verify a credential offline against the authority key.
    Verify {
        /// Bundle (JSON) or bare token file; `-` for standard input.
        file: PathBuf,
        /// Authority public key: k4.public.…, ssh-ed25519 …, or hex (from `breakglass authority`).
        #[arg(long, env = "BREAKGLASS_AUTHORITY")]
        authority: String,
        /// A JSON revocation list from `breakglass revocations --json`; revoked credentials fail.
        /// Its signature by the daemon key is checked first; a list that fails is refused.
        #[arg(long)]
        revocations: Option<PathBuf>,
        /// With --revocations: the daemon key D (hex, `breakglass info` prints it) that must
        /// have signed the list.
        #[arg(long, requires = "revocations")]
        daemon_key: Option<String>,
        /// Print JSON for scripts (fields in the README, "Scripting").
        #[arg(long)]
        json: bool,
    },
}
