//! Files received in a multipart body.

use bytes::Bytes;

/// One uploaded file: the name and content type the client sent, and the bytes received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadFile {
    pub filename: String,
    pub content_type: String,
    pub data: Bytes,
}

impl UploadFile {
    pub fn size(&self) -> usize {
        self.data.len()
    }
}
