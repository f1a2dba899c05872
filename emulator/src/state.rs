//! State shared by every listener.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::config::{EmulatorConfig, ThrottleConfig};
use crate::faults::FaultBoard;
use crate::token::TokenAuthority;
use crate::vault::Vault;

/// Everything the handlers share.
#[derive(Debug)]
pub struct State {
    /// The configuration the emulator started with.
    pub config: EmulatorConfig,
    /// Token minting and checking.
    pub tokens: TokenAuthority,
    /// Fault queues and counters.
    pub faults: FaultBoard,
    /// The vaults by name.
    pub vaults: HashMap<String, Vault>,
    /// Current throttle settings.
    pub throttle: Mutex<ThrottleConfig>,
    /// The Arc token folder.
    pub arc_dir: PathBuf,
    /// Arc keys issued (contents, file path), oldest first.
    pub arc_keys: Mutex<Vec<(String, PathBuf)>>,
    /// The https Entra base, e.g. `https://127.0.0.1:P` (the authority in Key Vault challenges).
    pub authority_host: String,
}

impl State {
    /// Resolve a client id to (client id, object id) among every identity.
    pub fn identity_by_client_id(&self, client_id: &str) -> Option<(String, String)> {
        self.config
            .all_identities()
            .into_iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(client_id))
    }
}
