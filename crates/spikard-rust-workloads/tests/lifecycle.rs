//! The server binary: graceful shutdown on SIGTERM, the header-read timeout, and refusing
//! bad command lines.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Binary {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server binary on a free port and reads the address it prints.
fn spawn(extra: &[&str]) -> Binary {
    let mut command = Command::new(env!("CARGO_BIN_EXE_spikard-rust-workloads"));
    command.args(["--port", "0", "--threads", "2"]).args(extra);
    spawn_command(command)
}

fn spawn_command(mut command: Command) -> Binary {
    let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .unwrap();
        if let Some(addr) = line.strip_prefix("spikard: listening on http://") {
            break addr.parse().unwrap();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Binary { child, addr }
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < limit, "the server did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_lets_an_in_flight_request_finish_then_exits() {
    graceful_shutdown(&[]);
}

#[test]
fn sigterm_is_graceful_on_the_multi_thread_runtime_too() {
    graceful_shutdown(&["--threading", "multi-thread"]);
}

#[test]
fn sigterm_is_graceful_for_the_bare_ceiling_too() {
    graceful_shutdown(&["--bare"]);
}

fn graceful_shutdown(extra: &[&str]) {
    let mut server = spawn(extra);
    let body = spikard_workloads::fixtures::JSON_SMALL.as_bytes();
    let (first, rest) = body.split_at(40);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    write!(
        stream,
        "POST /json/small HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(first).unwrap();
    stream.flush().unwrap();
    // An idle keep-alive connection must not hold the shutdown up.
    let idle = TcpStream::connect(server.addr).unwrap();
    std::thread::sleep(Duration::from_millis(200));

    sigterm(&server.child);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );
    assert!(
        TcpStream::connect(server.addr).is_err(),
        "still accepting after SIGTERM"
    );

    stream.write_all(rest).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(
        answer.ends_with(spikard_workloads::fixtures::JSON_SMALL),
        "{answer}"
    );
    let status = wait_exit(&mut server.child, Duration::from_secs(20));
    assert!(status.success(), "{status}");
    drop(idle);
}

#[test]
fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let server = spawn(&[]);
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // Meanwhile others are served.
    let mut other = TcpStream::connect(server.addr).unwrap();
    other
        .write_all(b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    other.read_to_string(&mut answer).unwrap();
    assert!(answer.ends_with("{\"status\":\"ok\"}"), "{answer}");
    // The default header-read timeout is 10 s; the slow client is then cut off.
    let mut buf = Vec::new();
    let read = slow.read_to_end(&mut buf);
    assert!(
        read.is_ok(),
        "connection not closed by the server: {read:?}"
    );
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));
}

/// Seconds until the server closes `conn` (reading and dropping whatever it sends).
fn closed_after(conn: &mut TcpStream, from: Instant) -> f64 {
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return from.elapsed().as_secs_f64(),
            Ok(_) => {}
            Err(err) => panic!("connection not closed by the server: {err}"),
        }
    }
}

fn one_answer(conn: &mut TcpStream, target: &str) -> String {
    write!(conn, "GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut buf = [0u8; 4096];
    let n = conn.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn the_header_timeout_counts_from_the_end_of_the_last_answer() {
    let server = spawn(&["--header-timeout", "1"]);
    // A head that never ends, and one that arrives a byte at a time: both cut at 1 to 1.25 s.
    let start = Instant::now();
    let mut partial = TcpStream::connect(server.addr).unwrap();
    partial.write_all(b"GET /health HTTP/1.1\r\n").unwrap();
    let mut trickle = TcpStream::connect(server.addr).unwrap();
    let trickler = std::thread::spawn(move || {
        let head = b"GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: ".iter();
        for byte in head.chain(std::iter::repeat(&b'a')) {
            if trickle.write_all(&[*byte]).is_err() {
                return start.elapsed().as_secs_f64();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        unreachable!()
    });
    let partial_closed = closed_after(&mut partial, start);
    assert!((0.95..1.6).contains(&partial_closed), "{partial_closed}");
    let trickle_closed = trickler.join().unwrap();
    assert!((0.95..1.8).contains(&trickle_closed), "{trickle_closed}");

    // A keep-alive connection: each answer starts the clock again.
    let mut conn = TcpStream::connect(server.addr).unwrap();
    for _ in 0..3 {
        assert!(one_answer(&mut conn, "/health").contains("200 OK"));
        std::thread::sleep(Duration::from_millis(700));
    }
    let idle_from = Instant::now();
    assert!(one_answer(&mut conn, "/health").contains("200 OK"));
    let idle_closed = closed_after(&mut conn, idle_from);
    assert!((0.95..1.6).contains(&idle_closed), "{idle_closed}");

    // An answer that takes longer than the timeout to send is not cut.
    let mut slow_reader = TcpStream::connect(server.addr).unwrap();
    write!(slow_reader, "GET /sse/60000 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let reading = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    slow_reader
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    while reading.elapsed() < Duration::from_millis(2500) {
        let n = slow_reader.read(&mut buf).unwrap();
        assert!(n > 0, "stream cut after {:?}", reading.elapsed());
        got.extend_from_slice(&buf[..n]);
        std::thread::sleep(Duration::from_millis(20));
    }
    while !got.ends_with(b"0\r\n\r\n") {
        let n = slow_reader.read(&mut buf).unwrap();
        assert!(n > 0, "stream cut before its end");
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("\"seq\":59999"), "last event missing");
}

/// The names of the process's serving threads (`spikard-N`), from /proc, once `expected`
/// of them have started (or after 5 s).
fn serving_threads(child: &Child, expected: usize) -> Vec<String> {
    let start = Instant::now();
    loop {
        let names = thread_names(child);
        if names.len() >= expected || start.elapsed() > Duration::from_secs(5) {
            return names;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn thread_names(child: &Child) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", child.id()))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| {
            name.strip_prefix("spikard-")
                .is_some_and(|n| n.parse::<usize>().is_ok())
        })
        .collect();
    names.sort();
    names
}

fn get(addr: SocketAddr, target: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn every_thread_of_the_per_core_shape_serves_its_share() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_spikard-rust-workloads"));
    command.args(["--port", "0", "--threads", "4"]);
    let server = spawn_command(command);
    assert_eq!(
        serving_threads(&server.child, 4),
        ["spikard-0", "spikard-1", "spikard-2", "spikard-3"]
    );
    // The kernel spreads connections over the four listeners by address; each must answer.
    let answers: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..64)
            .map(|i| scope.spawn(move || get(server.addr, &format!("/path/int/{}", 1000 + i))))
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    for (i, answer) in answers.iter().enumerate() {
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(
            answer.ends_with(&format!("{{\"id\":{}}}", 1000 + i)),
            "{answer}"
        );
    }
}

#[test]
fn the_default_is_one_thread_per_cpu_the_process_may_use() {
    let under_taskset = |cpus: &str| {
        let mut command = Command::new("taskset");
        command
            .args(["-c", cpus, env!("CARGO_BIN_EXE_spikard-rust-workloads")])
            .args(["--port", "0"]);
        spawn_command(command)
    };
    let server = under_taskset("0");
    // One CPU: one thread, served on the main thread's current-thread runtime.
    assert!(get(server.addr, "/health").ends_with("{\"status\":\"ok\"}"));
    assert!(serving_threads(&server.child, 0).is_empty());
    let server = under_taskset("0,1");
    assert_eq!(
        serving_threads(&server.child, 2),
        ["spikard-0", "spikard-1"]
    );
}

#[test]
fn bad_command_lines_are_refused() {
    for (args, named) in [
        (["--port", "not-a-port"], "--port"),
        (["--threading", "work-stealing"], "per-core or multi-thread"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_spikard-rust-workloads"))
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains(named));
    }
}
