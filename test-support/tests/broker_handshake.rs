//! Proves the test harness talks to a real AMQP 0-9-1 broker, at the byte level.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn broker_answers_protocol_header_with_connection_start() {
    let (host, port) = amqp_test_support::broker_addr();
    let mut sock = TcpStream::connect((host.as_str(), port))
        .unwrap_or_else(|e| panic!("cannot connect to broker at {host}:{port}: {e}"));
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    sock.write_all(b"AMQP\x00\x00\x09\x01").unwrap();

    // Frame header: type (1), channel (2), payload size (4).
    let mut header = [0u8; 7];
    sock.read_exact(&mut header).unwrap();
    assert_eq!(header[0], 1, "first frame must be a method frame");
    assert_eq!(
        u16::from_be_bytes([header[1], header[2]]),
        0,
        "on channel 0"
    );
    let size = u32::from_be_bytes([header[3], header[4], header[5], header[6]]) as usize;
    assert!(
        size > 4 && size < 64 * 1024,
        "implausible payload size {size}"
    );

    let mut payload = vec![0u8; size + 1];
    sock.read_exact(&mut payload).unwrap();
    assert_eq!(payload[size], 0xCE, "frame-end octet");
    // connection.start is class 10, method 10, then version-major 0, version-minor 9.
    assert_eq!(&payload[..4], &[0, 10, 0, 10], "connection.start");
    assert_eq!(&payload[4..6], &[0, 9], "server speaks AMQP 0-9");
    // The server-properties table names the product.
    let text = String::from_utf8_lossy(&payload);
    assert!(text.contains("RabbitMQ"), "server properties name RabbitMQ");
    // The mechanisms long string offers PLAIN.
    assert!(text.contains("PLAIN"), "PLAIN among the SASL mechanisms");
}
