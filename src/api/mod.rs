//! The wire model: the types each API dialect sends and receives, shared by the server's
//! handlers, the webhook payloads and the clients.

pub mod doc;
pub mod v1;
pub mod v3;
