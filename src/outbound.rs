//! Answers of other servers read with a byte cap (issue 10): streamed, with the cap checked
//! against the declared length first and then per chunk, so an endless or huge body costs
//! at most the cap. Used by the JWKS fetch (`auth`) and the SMART app's small JSON reads.

/// Why a capped body was not read.
#[derive(Debug)]
pub enum CappedBodyError {
    /// Over the cap (declared or streamed).
    TooLarge,
    /// The connection failed while reading.
    Broken(reqwest::Error),
}

/// The body of `response`, at most `cap` bytes.
pub async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, CappedBodyError> {
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(CappedBodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(CappedBodyError::Broken)? {
        if body.len() + chunk.len() > cap {
            return Err(CappedBodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
