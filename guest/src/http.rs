//! The one outbound call, over `wasi:http/outgoing-handler`, with explicit
//! timeouts (the runtime's defaults are ten minutes).

use crate::pytest_pagerduty::alerts::types::AlertRequest;
use crate::settings::parse_url;
use crate::wasi::http::outgoing_handler;
use crate::wasi::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, HeaderError, IncomingBody, IncomingResponse, Method,
    OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use crate::wasi::io::streams::StreamError;

/// Replies larger than this are cut; PagerDuty's are a few kilobytes.
const REPLY_MAX: usize = 1 << 20;
/// `blocking-write-and-flush` takes at most 4096 bytes a call.
const WRITE_CHUNK: usize = 4096;

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

fn internal(what: &str) -> ErrorCode {
    ErrorCode::InternalError(Some(what.to_string()))
}

pub fn send(request: &AlertRequest) -> Result<Reply, ErrorCode> {
    // The component built the URL; only its query is not part of a base.
    let (base, query) = match request.url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (request.url.as_str(), None),
    };
    let endpoint = parse_url(base).map_err(|e| internal(&e))?;
    // Hosts allow or refuse a request by its `authority`: it must be where
    // the request goes.
    if endpoint.authority != request.authority {
        return Err(internal("the request's authority is not its URL's"));
    }
    let path_with_query = match query {
        Some(query) => format!("{}?{query}", endpoint.path),
        None => endpoint.path.clone(),
    };
    let fields: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.as_bytes().to_vec()))
        // Without content-length the body goes chunked, which some servers refuse.
        .chain((request.method != "GET").then(|| {
            (
                "content-length".to_string(),
                request.body.len().to_string().into_bytes(),
            )
        }))
        .collect();
    let headers = Fields::from_list(&fields).map_err(|e| internal(bad_header(e)))?;
    let outgoing = OutgoingRequest::new(headers);
    let method = match request.method.as_str() {
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "GET" => Method::Get,
        other => Method::Other(other.to_string()),
    };
    outgoing
        .set_method(&method)
        .map_err(|_| internal("method"))?;
    let scheme = if endpoint.https {
        Scheme::Https
    } else {
        Scheme::Http
    };
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|_| internal("scheme"))?;
    outgoing
        .set_authority(Some(&endpoint.authority))
        .map_err(|_| internal("authority"))?;
    outgoing
        .set_path_with_query(Some(&path_with_query))
        .map_err(|_| internal("path"))?;
    let body = outgoing.body().map_err(|_| internal("body"))?;

    let options = RequestOptions::new();
    let timeout = Some(u64::from(request.timeout_ms) * 1_000_000);
    // Setting a timeout fails only where the runtime does not support it.
    let _ = options.set_connect_timeout(timeout);
    let _ = options.set_first_byte_timeout(timeout);
    let _ = options.set_between_bytes_timeout(timeout);

    let future = outgoing_handler::handle(outgoing, Some(options))?;
    // A failed write is reported through the response, which says why (a
    // refused connection shows up as a closed stream), so wait for it.
    let _ = write_body(body, request.body.as_bytes());
    read_reply(wait(&future)?)
}

/// "bad header: {e:?}", spelled out: the derived `Debug` costs more.
fn bad_header(error: HeaderError) -> &'static str {
    match error {
        HeaderError::InvalidSyntax => "bad header: HeaderError::InvalidSyntax",
        HeaderError::Forbidden => "bad header: HeaderError::Forbidden",
        HeaderError::Immutable => "bad header: HeaderError::Immutable",
    }
}

fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), ErrorCode> {
    {
        let stream = body.write().map_err(|_| internal("body stream"))?;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| stream_error(e, "writing the request"))?;
        }
    }
    OutgoingBody::finish(body, None)
}

fn wait(future: &FutureIncomingResponse) -> Result<IncomingResponse, ErrorCode> {
    future.subscribe().block();
    match future.get() {
        Some(Ok(result)) => result,
        Some(Err(())) => Err(internal("response already taken")),
        None => Err(internal("response not ready after waiting")),
    }
}

fn read_reply(response: IncomingResponse) -> Result<Reply, ErrorCode> {
    let status = response.status();
    let headers = {
        let fields = response.headers();
        fields
            .entries()
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect()
    };
    let incoming = response.consume().map_err(|_| internal("response body"))?;
    let mut body = Vec::new();
    {
        let stream = incoming.stream().map_err(|_| internal("response stream"))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => {
                    body.extend_from_slice(&chunk);
                    if body.len() > REPLY_MAX {
                        body.truncate(REPLY_MAX);
                        break;
                    }
                }
                Err(StreamError::Closed) => break,
                Err(e) => return Err(stream_error(e, "reading the reply")),
            }
        }
    }
    drop(IncomingBody::finish(incoming));
    Ok(Reply {
        status,
        headers,
        body,
    })
}

fn stream_error(error: StreamError, doing: &str) -> ErrorCode {
    match error {
        StreamError::LastOperationFailed(e) => crate::wasi::http::types::http_error_code(&e)
            .unwrap_or_else(|| internal(&format!("{doing}: {}", e.to_debug_string()))),
        StreamError::Closed => internal(&format!("{doing}: stream closed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_header_is_named_as_its_derived_debug_names_it() {
        for error in [
            HeaderError::InvalidSyntax,
            HeaderError::Forbidden,
            HeaderError::Immutable,
        ] {
            assert_eq!(bad_header(error), format!("bad header: {error:?}"));
        }
    }
}
