//! The request-response codecs (block sync, blobs): one length-prefixed
//! frame each way (u32 big-endian length, then the borsh body). The length is checked
//! against the bound before anything is read, and memory follows the bytes
//! actually received.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use palisade_types::encode;

use palisade_files::wire::{
    BlobRequest, BlobResponse, MAX_BLOB_REQUEST_BYTES, MAX_BLOB_RESPONSE_BYTES,
};

use super::wire::{SyncRequest, SyncResponse, MAX_SYNC_REQUEST_BYTES, MAX_SYNC_RESPONSE_BYTES};

pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/palisade/sync/1");
pub const BLOB_PROTOCOL: StreamProtocol = StreamProtocol::new(palisade_files::wire::BLOB_PROTOCOL);

/// Frames up to this size get their whole buffer at once: only requests
/// and the answers to this node's own blob requests are that small and
/// that big, so a peer's claimed length costs at most this per request
/// this node chose to make. Growing a 1 MiB piece's buffer from 64 KiB
/// cost a download several reallocations and page faults per piece.
const PREALLOCATE_UP_TO: usize = 2 * 1024 * 1024;

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the limit of {max}"),
        ));
    }
    if max <= PREALLOCATE_UP_TO {
        // Read straight into a buffer of the frame's size: reading to the
        // end probes past it, which doubled a piece's buffer and copied it.
        let mut buf = vec![0u8; len];
        io.read_exact(&mut buf).await.map_err(|e| {
            io::Error::new(e.kind(), format!("frame of {len} bytes ended early: {e}"))
        })?;
        return Ok(buf);
    }
    // Bigger frames: the buffer grows with the bytes that arrive, never to
    // the length a peer merely claims: a frame header promising 40 MiB
    // followed by nothing costs this node nothing.
    let mut buf = Vec::with_capacity(len.min(64 * 1024));
    io.take(len as u64).read_to_end(&mut buf).await?;
    if buf.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("frame ended after {} of {len} bytes", buf.len()),
        ));
    }
    Ok(buf)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    (head, bulk): (Vec<u8>, Option<&[u8]>),
) -> io::Result<()> {
    let bulk = bulk.unwrap_or_default();
    let len = u32::try_from(head.len() + bulk.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(&head).await?;
    io.write_all(bulk).await?;
    io.close().await
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// A message of a request-response protocol: bounded, canonical borsh.
pub trait Frame: Sized + Send {
    /// Largest encoding accepted.
    const MAX_BYTES: usize;
    fn to_bytes(&self) -> Vec<u8>;
    fn from_bytes(bytes: &[u8]) -> Result<Self, palisade_types::DecodeError>;

    /// Decodes a frame it may keep (a piece keeps its bytes, uncopied).
    fn from_frame(bytes: Vec<u8>) -> Result<Self, palisade_types::DecodeError> {
        Self::from_bytes(&bytes)
    }

    /// The encoding as a head and, for a message that carries bulk bytes
    /// (a piece), those bytes after it, not copied into one buffer first.
    fn parts(&self) -> (Vec<u8>, Option<&[u8]>) {
        (self.to_bytes(), None)
    }
}

impl Frame for SyncRequest {
    const MAX_BYTES: usize = MAX_SYNC_REQUEST_BYTES;
    fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, palisade_types::DecodeError> {
        SyncRequest::decode(bytes)
    }
}

impl Frame for SyncResponse {
    const MAX_BYTES: usize = MAX_SYNC_RESPONSE_BYTES;
    fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, palisade_types::DecodeError> {
        SyncResponse::decode(bytes)
    }
}

impl Frame for BlobRequest {
    const MAX_BYTES: usize = MAX_BLOB_REQUEST_BYTES;
    fn to_bytes(&self) -> Vec<u8> {
        self.encode()
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, palisade_types::DecodeError> {
        BlobRequest::decode(bytes)
    }
}

impl Frame for BlobResponse {
    const MAX_BYTES: usize = MAX_BLOB_RESPONSE_BYTES;
    fn to_bytes(&self) -> Vec<u8> {
        self.encode()
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, palisade_types::DecodeError> {
        BlobResponse::decode(bytes)
    }
    fn from_frame(bytes: Vec<u8>) -> Result<Self, palisade_types::DecodeError> {
        BlobResponse::decode_owned(bytes)
    }
    fn parts(&self) -> (Vec<u8>, Option<&[u8]>) {
        match self {
            BlobResponse::Piece { encoded } => (
                BlobResponse::piece_header(encoded.len()).to_vec(),
                Some(encoded),
            ),
            other => (other.encode(), None),
        }
    }
}

/// The codec of a protocol whose requests are `Q` and responses `R`.
#[derive(Debug, Clone, Copy)]
pub struct FrameCodec<Q, R>(std::marker::PhantomData<fn() -> (Q, R)>);

impl<Q, R> Default for FrameCodec<Q, R> {
    fn default() -> Self {
        FrameCodec(std::marker::PhantomData)
    }
}

/// Block sync's codec.
pub type SyncCodec = FrameCodec<SyncRequest, SyncResponse>;
/// The blob protocol's codec.
pub type BlobCodec = FrameCodec<BlobRequest, BlobResponse>;

impl<Q: Frame + 'static, R: Frame + 'static> libp2p::request_response::Codec for FrameCodec<Q, R> {
    type Protocol = StreamProtocol;
    type Request = Q;
    type Response = R;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Q>
    where
        T: AsyncRead + Unpin + Send,
    {
        let body = read_frame(io, Q::MAX_BYTES).await?;
        Q::from_frame(body).map_err(invalid)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<R>
    where
        T: AsyncRead + Unpin + Send,
    {
        let body = read_frame(io, R::MAX_BYTES).await?;
        R::from_frame(body).map_err(invalid)
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, req: Q) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, req.parts()).await
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, res: R) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, res.parts()).await
    }
}
