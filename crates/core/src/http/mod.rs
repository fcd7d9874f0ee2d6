//! Response bodies: opening beneath a served root, and sending a file's
//! bytes to a socket (zero-copy on io_uring, `sendfile(2)` otherwise).

pub mod beneath;
pub mod send_body;
pub mod send_inline;
pub(crate) mod sendfile_body;
pub mod served_file;
