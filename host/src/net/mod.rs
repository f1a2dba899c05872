//! Where the host's network ends and a guest's begins: what an address is
//! ([`address`]), and which addresses are this process's identity endpoints
//! ([`identity_endpoints`]), which no guest request may reach. Credential sources register
//! into the latter; egress reads both.

pub mod address;
pub mod identity_endpoints;
