#![allow(dead_code)]

use std::sync::Arc;

use totp_mfa::testing::Authenticator;
use totp_mfa::{
    Authorization, Challenge, Enrollment, Error, LoginStart, ManualClock, MemoryStore, Mfa,
    MfaStatus, Policy, Reauth, RecoveryCodes, SecondFactor, Store, UserId,
};

pub const T0: u64 = 1_800_000_000; // a time-step boundary: 1_800_000_000 % 30 == 0

/// The service under test, through one of its two faces: the blocking `Mfa`, or the async
/// `AsyncMfa` driven on a tokio runtime. A test binary whose name ends in `_async` (such as
/// `flows_async`, which includes `flows.rs`) runs every flow test on the async face.
pub enum TestMfa {
    Blocking(Mfa<Arc<MemoryStore>, Arc<ManualClock>>),
    #[cfg(feature = "async")]
    Async(
        totp_mfa::AsyncMfa<Arc<MemoryStore>, Arc<ManualClock>>,
        tokio::runtime::Runtime,
    ),
}

/// Runs the same call on whichever face the world uses.
macro_rules! face {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match $self {
            TestMfa::Blocking(m) => m.$method($($arg),*),
            #[cfg(feature = "async")]
            TestMfa::Async(m, rt) => rt.block_on(m.$method($($arg),*)),
        }
    };
}

impl std::fmt::Debug for TestMfa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TestMfa::Blocking(m) => m.fmt(f),
            #[cfg(feature = "async")]
            TestMfa::Async(m, _) => m.fmt(f),
        }
    }
}

impl TestMfa {
    fn new(store: Arc<MemoryStore>, policy: Policy, clock: Arc<ManualClock>) -> Self {
        #[cfg(feature = "async")]
        if env!("CARGO_CRATE_NAME").ends_with("_async") {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .build()
                .unwrap();
            let mfa = totp_mfa::AsyncMfa::new(store, policy)
                .unwrap()
                .with_clock(clock);
            return TestMfa::Async(mfa, runtime);
        }
        TestMfa::Blocking(Mfa::new(store, policy).unwrap().with_clock(clock))
    }

    pub fn is_async(&self) -> bool {
        !matches!(self, TestMfa::Blocking(_))
    }

    pub fn policy(&self) -> &Policy {
        match self {
            TestMfa::Blocking(m) => m.policy(),
            #[cfg(feature = "async")]
            TestMfa::Async(m, _) => m.policy(),
        }
    }

    pub fn status(&self, user: &UserId) -> Result<MfaStatus, Error> {
        face!(self.status(user))
    }

    pub fn begin_enrollment(&self, user: &UserId, account: &str) -> Result<Enrollment, Error> {
        face!(self.begin_enrollment(user, account))
    }

    pub fn resume_enrollment(&self, user: &UserId) -> Result<Enrollment, Error> {
        face!(self.resume_enrollment(user))
    }

    pub fn confirm_enrollment(&self, user: &UserId, code: &str) -> Result<RecoveryCodes, Error> {
        face!(self.confirm_enrollment(user, code))
    }

    pub fn start_login(&self, user: &UserId) -> Result<LoginStart, Error> {
        face!(self.start_login(user))
    }

    pub fn complete_login(
        &self,
        user: &UserId,
        ticket: &str,
        factor: SecondFactor<'_>,
    ) -> Result<Authorization, Error> {
        face!(self.complete_login(user, ticket, factor))
    }

    pub fn regenerate_recovery_codes(
        &self,
        user: &UserId,
        reauth: Reauth<'_>,
    ) -> Result<RecoveryCodes, Error> {
        face!(self.regenerate_recovery_codes(user, reauth))
    }

    pub fn disable(&self, user: &UserId, reauth: Reauth<'_>) -> Result<(), Error> {
        face!(self.disable(user, reauth))
    }

    pub fn unlock(&self, user: &UserId) -> Result<(), Error> {
        face!(self.unlock(user))
    }
}

pub struct World {
    pub mfa: TestMfa,
    pub clock: Arc<ManualClock>,
    pub store: Arc<MemoryStore>,
}

/// A fast policy for tests: the minimum recovery-hash rounds.
pub fn policy() -> Policy {
    Policy::new("Example").with_recovery_hash_rounds(1_000)
}

pub fn world_with(policy: Policy) -> World {
    let clock = Arc::new(ManualClock::new(T0));
    let store = Arc::new(MemoryStore::new());
    let mfa = TestMfa::new(store.clone(), policy, clock.clone());
    World { mfa, clock, store }
}

pub fn world() -> World {
    world_with(policy())
}

pub fn user(name: &str) -> UserId {
    UserId::new(name).unwrap()
}

impl World {
    pub fn now(&self) -> u64 {
        use totp_mfa::Clock;
        self.clock.now().unwrap()
    }

    /// Enrolls `user`; returns the phone and the recovery codes.
    pub fn enroll(&self, user: &UserId) -> (Authenticator, RecoveryCodes) {
        let e = self
            .mfa
            .begin_enrollment(user, "someone@example.com")
            .unwrap();
        let phone = Authenticator::from_uri(e.uri().as_str()).unwrap();
        let codes = self
            .mfa
            .confirm_enrollment(user, &phone.code_at(self.now()).unwrap())
            .unwrap();
        (phone, codes)
    }

    pub fn challenge(&self, user: &UserId) -> Challenge {
        match self.mfa.start_login(user).unwrap() {
            LoginStart::Challenge(c) => c,
            LoginStart::NoMfa => panic!("expected a challenge"),
        }
    }

    /// The stored bytes for `user`, to prove that an operation left them untouched.
    pub fn snapshot(&self, user: &UserId) -> Option<(u64, Vec<u8>)> {
        self.store
            .load(user)
            .unwrap()
            .map(|r| (r.version(), r.data().to_vec()))
    }
}

pub fn first_code(codes: &RecoveryCodes) -> String {
    codes.iter().next().unwrap().as_str().to_owned()
}

/// `<target>/<profile>/examples/<name>`, found from the running test binary's own path
/// (`<target>/<profile>/deps/<test>-<hash>`). `cargo test` builds the examples first; a
/// binary older than its source would test yesterday's code, so that fails too.
pub fn example_binary(name: &str) -> std::path::PathBuf {
    use std::path::Path;
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in <target>/<profile>/deps");
    let bin = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: run these tests via `cargo test` (which builds the examples), or run \
         `cargo build --example {name}` first",
        bin.display()
    );
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("examples/{name}.rs"));
    if let (Ok(src), Ok(b)) = (source.metadata(), bin.metadata()) {
        if let (Ok(src), Ok(b)) = (src.modified(), b.modified()) {
            assert!(
                src <= b,
                "{} is older than examples/{name}.rs: rebuild it with `cargo test` or \
                 `cargo build --example {name}`",
                bin.display()
            );
        }
    }
    bin
}
