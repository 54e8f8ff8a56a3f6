//! UDP sockets with large receive buffers, and the kernel's count of datagrams dropped because
//! a socket's buffer was full (the `drops` column of Linux's /proc/net/udp and udp6).

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use nix::sys::socket::{getsockopt, setsockopt, sockopt};

/// Binds a non-blocking UDP socket on `addr` and asks for a receive buffer of `rcvbuf` bytes:
/// `SO_RCVBUF`, and when the system's maximum (`net.core.rmem_max`) caps it,
/// `SO_RCVBUFFORCE` (allowed with CAP_NET_ADMIN); if neither gets it, the socket keeps what it
/// got and a warning says so.
pub fn bind(addr: SocketAddr, rcvbuf: Option<usize>) -> std::io::Result<UdpSocket> {
    let sock = UdpSocket::bind(addr)?;
    sock.set_nonblocking(true)?;
    if let Some(want) = rcvbuf {
        setsockopt(&sock, sockopt::RcvBuf, &want).map_err(std::io::Error::from)?;
        // Linux reports twice the size asked for (the bookkeeping overhead included).
        if recv_buffer(&sock)? < want.saturating_mul(2) {
            let _ = setsockopt(&sock, sockopt::RcvBufForce, &want);
            let got = recv_buffer(&sock)?;
            if got < want.saturating_mul(2) {
                tracing::warn!(
                    "UDP {addr}: receive buffer {got} bytes, less than the {want} asked for (raise net.core.rmem_max or give the bridge CAP_NET_ADMIN)"
                );
            }
        }
    }
    Ok(sock)
}

/// The receive buffer size the kernel reports for `sock` (`SO_RCVBUF`).
pub fn recv_buffer(sock: &impl std::os::fd::AsFd) -> std::io::Result<usize> {
    getsockopt(sock, sockopt::RcvBuf).map_err(std::io::Error::from)
}

/// The inode of a socket, which /proc/net/udp lists it by.
pub fn inode(sock: &impl AsRawFd) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", sock.as_raw_fd())).ok()?;
    link.to_str()?
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The datagrams the kernel dropped for the sockets with these inodes (summed from
/// /proc/net/udp and /proc/net/udp6; 0 where the system does not report them).
pub fn drops(inodes: &[u64]) -> u64 {
    let mut total = 0;
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let ino = cols.get(9).and_then(|c| c.parse::<u64>().ok());
            if ino.is_some_and(|i| inodes.contains(&i)) {
                total += cols.last().and_then(|c| c.parse::<u64>().ok()).unwrap_or(0);
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_buffer_applied() {
        let s = bind("127.0.0.1:0".parse().unwrap(), Some(4 << 20)).unwrap();
        // Root may force past rmem_max; the kernel doubles what was asked.
        assert!(
            recv_buffer(&s).unwrap() >= 8 << 20,
            "{}",
            recv_buffer(&s).unwrap()
        );
        let small = bind("127.0.0.1:0".parse().unwrap(), Some(4096)).unwrap();
        assert!(recv_buffer(&small).unwrap() < 64 << 10);
    }

    #[test]
    fn kernel_drops_read_for_a_full_socket() {
        let s = bind("127.0.0.1:0".parse().unwrap(), Some(4096)).unwrap();
        let ino = inode(&s).unwrap();
        assert_eq!(drops(&[ino]), 0);
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = s.local_addr().unwrap();
        for _ in 0..200 {
            tx.send_to(&[b'x'; 1000], to).unwrap();
        }
        let d = drops(&[ino]);
        assert!(d > 100, "{d} drops");
        // Another socket's drops are not counted.
        assert_eq!(drops(&[ino + 1_000_000_000]), 0);
    }
}
