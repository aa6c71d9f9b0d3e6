//! Keeps a request's payload alive until its response has been written, so an error answer
//! with the body unread (413, 404, 408 ...) closes the connection instead of actix draining
//! an endless chunked upload to keep the connection alive (issue 10, fault 8).
//!
//! actix-http drains a dropped chunked payload without limit; it closes the connection only
//! when the payload is unfinished and still held at the end of the response. The handler
//! gets a stream that reads from a shared cell; the response body holds the cell.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{Payload, ServiceRequest};
use actix_web::web::Bytes;
use futures::StreamExt;

/// The shared cell holding the original payload.
pub type Held = Rc<RefCell<Payload>>;

/// Swaps `req`'s payload for a stream reading from a shared cell, and returns the cell.
pub fn hold(req: &mut ServiceRequest) -> Held {
    let original = std::mem::replace(req.parts_mut().1, Payload::None);
    let held: Held = Rc::new(RefCell::new(original));
    let reader = held.clone();
    let stream = futures::stream::poll_fn(move |cx| reader.borrow_mut().poll_next_unpin(cx));
    req.set_payload(Payload::Stream {
        payload: Box::pin(stream),
    });
    held
}

/// A response body that keeps the request payload until the body itself is dropped.
pub struct Holding<B> {
    body: B,
    _held: Held,
}

impl<B> Holding<B> {
    /// Wraps `body`.
    pub fn new(body: B, held: Held) -> Holding<B> {
        Holding { body, _held: held }
    }
}

impl<B: MessageBody + Unpin> MessageBody for Holding<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}
