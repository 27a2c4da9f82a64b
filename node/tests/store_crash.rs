//! Crash test: every acknowledged write survives SIGKILL, and batches are all-or-nothing.
//!
//! This binary is its own writer child. With `SEEDFED_STORE_CRASH_CHILD=<backend> <dir> <start>`
//! set it opens the store and applies records `start, start+1, ...`, printing `ACK <i>` only
//! after the write for record `i` returned `Ok` (that line is the acknowledgement the durability
//! contract is about). Without it, it is a test harness: for each backend the parent starts the
//! child, reads acknowledgements, kills the child with SIGKILL at a seeded random moment (after
//! 0..=30 acknowledgements plus a random delay), reopens the store and checks that its content is
//! exactly the state after the acknowledged records, or after one more (the record in flight).
//! Then it restarts the child from the first unacknowledged record, on the same files.
//!
//! Knobs: `SEEDFED_CRASH_KILLS` (kills per backend, default 20) and `SEEDFED_CRASH_SEED`
//! (default 0x5eed). SIGKILL tests process crashes; the OS page cache survives it, so this does
//! not exercise power loss (that is what the fsync in the contract is for).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use seedfed_node::store::{self, Backend, Batch, Op, Store};

const CHILD_ENV: &str = "SEEDFED_STORE_CRASH_CHILD";
const KEYSPACES: [&str; 3] = ["data", "index", "tomb"];
/// The child stops by itself after this many records (it is normally killed long before).
const CHILD_MAX_RECORDS: u64 = 100_000;
/// Longest wait for the child's next line before the round fails.
const ROUND_TIMEOUT: Duration = Duration::from_secs(60);

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        std::process::exit(child(&spec));
    }
    let args = Arguments::from_args();
    let mut trials = vec![
        Trial::test("crash_redb", || crash(Backend::Redb)),
        Trial::test("crash_on_create_redb", || crash_on_create(Backend::Redb)),
    ];
    if cfg!(feature = "sled") {
        trials.push(Trial::test("crash_sled", || crash(Backend::Sled)));
        trials.push(Trial::test("crash_on_create_sled", || {
            crash_on_create(Backend::Sled)
        }));
    }
    libtest_mimic::run(&args, trials).exit();
}

/// The value of record `i`: its index, then a pattern; sizes vary from a few bytes to 64 KiB so
/// writes span several pages now and then.
fn value(i: u64) -> Vec<u8> {
    let len = if i.is_multiple_of(17) {
        64 * 1024
    } else {
        8 + (i * 7919 % 3000) as usize
    };
    let mut v = i.to_be_bytes().to_vec();
    v.extend((0..len).map(|p| ((i as usize * 31 + p * 17) % 251) as u8));
    v
}

/// Record `i` as a batch. Every record is idempotent (plain assignments), so re-applying the
/// record that was in flight when the child died is harmless.
fn record(i: u64) -> Batch {
    let key = i.to_be_bytes();
    let mut batch = Batch::new();
    batch.put("data", &key, &value(i));
    match i % 3 {
        1 => {
            batch.put("index", &key, &i.wrapping_mul(2_654_435_761).to_le_bytes());
        }
        2 => {
            let prev = (i - 1).to_be_bytes();
            batch.delete("data", &prev).put("tomb", &prev, b"t");
        }
        _ => {}
    }
    batch
}

type Model = BTreeMap<(String, Vec<u8>), Vec<u8>>;

fn apply(model: &mut Model, batch: &Batch) {
    for op in batch.ops() {
        match op {
            Op::Put {
                keyspace,
                key,
                value,
            } => {
                model.insert((keyspace.clone(), key.clone()), value.clone());
            }
            Op::Delete { keyspace, key } => {
                model.remove(&(keyspace.clone(), key.clone()));
            }
        }
    }
}

/// The child: apply records from `start` on and acknowledge each after its write returned Ok.
fn child(spec: &str) -> i32 {
    let mut parts = spec.splitn(3, ' ');
    let (Some(backend), Some(start), Some(dir)) = (parts.next(), parts.next(), parts.next()) else {
        eprintln!("crash child: bad spec {spec:?}");
        return 2;
    };
    let (Ok(backend), Ok(start)) = (backend.parse::<Backend>(), start.parse::<u64>()) else {
        eprintln!("crash child: bad spec {spec:?}");
        return 2;
    };
    let store = match store::open(Path::new(dir), backend) {
        Ok(store) => store,
        Err(e) => {
            println!("ERR open: {e}");
            return 3;
        }
    };
    let mut out = std::io::stdout().lock();
    for i in start..start + CHILD_MAX_RECORDS {
        if let Err(e) = store.write(&record(i)) {
            let _ = writeln!(out, "ERR write {i}: {e}");
            return 3;
        }
        if writeln!(out, "ACK {i}").and_then(|()| out.flush()).is_err() {
            return 0; // The parent went away.
        }
    }
    0
}

fn env_u64(name: &str, default: u64) -> Result<u64, Failed> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| Failed::from(format!("{name}={v:?} is not a number"))),
        Err(_) => Ok(default),
    }
}

fn scan_all(store: &dyn Store) -> Result<Model, Failed> {
    let mut model = Model::new();
    for ks in KEYSPACES {
        for entry in store
            .scan_prefix(ks, b"")
            .map_err(|e| format!("scan {ks}: {e}"))?
        {
            let (k, v) = entry.map_err(|e| format!("scan {ks}: {e}"))?;
            model.insert((ks.to_owned(), k), v);
        }
    }
    Ok(model)
}

/// Runs one child until it has acknowledged `target` records (or, for 0, right away), waits
/// `delay`, kills it, and collects every acknowledgement it printed before dying.
fn run_child(
    backend: Backend,
    dir: &Path,
    start: u64,
    target: u64,
    delay: Duration,
) -> Result<u64, Failed> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut child = Command::new(exe)
        .env(CHILD_ENV, format!("{backend} {start} {}", dir.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawn child: {e}"))?;
    let stdout = child.stdout.take().ok_or("child has no stdout")?;
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let mut acked = 0u64;
    let check_line = |line: &str, acked: &mut u64| -> Result<(), Failed> {
        match line.strip_prefix("ACK ").map(str::parse::<u64>) {
            Some(Ok(i)) if i == start + *acked => {
                *acked += 1;
                Ok(())
            }
            _ => Err(format!("unexpected line from child: {line:?}").into()),
        }
    };
    let mut failure = None;
    while acked < target {
        match rx.recv_timeout(ROUND_TIMEOUT) {
            Ok(line) => {
                if let Err(e) = check_line(&line, &mut acked) {
                    failure = Some(e);
                    break;
                }
            }
            Err(_) => {
                failure = Some(Failed::from(format!(
                    "child stopped or stalled after {acked} of {target} acknowledgements"
                )));
                break;
            }
        }
    }
    std::thread::sleep(delay);
    // `Child::kill` sends SIGKILL on Unix.
    let _ = child.kill();
    let _ = child.wait();
    // The pipe is closed now; read what the child printed before it died.
    while let Ok(line) = rx.recv_timeout(ROUND_TIMEOUT) {
        if failure.is_none() {
            if let Err(e) = check_line(&line, &mut acked) {
                failure = Some(e);
            }
        }
    }
    let _ = reader.join();
    match failure {
        Some(e) => Err(e),
        None => Ok(acked),
    }
}

fn crash(backend: Backend) -> Result<(), Failed> {
    let kills = env_u64("SEEDFED_CRASH_KILLS", 20)?;
    let seed = env_u64("SEEDFED_CRASH_SEED", 0x5eed)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ backend as u64);
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let started = Instant::now();

    // `model` is the state after the first `next` records, all acknowledged.
    let mut model = Model::new();
    let mut next = 0u64;
    let mut in_flight_found = 0u64;
    for round in 0..kills {
        let target = rng.next_u64() % 31;
        let delay = if target == 0 {
            Duration::from_micros(rng.next_u64() % 20_000)
        } else {
            Duration::from_micros(rng.next_u64() % 2_000)
        };
        let acks = run_child(backend, dir.path(), next, target, delay)
            .map_err(|e| format!("round {round}: {}", e.message().unwrap_or("failed")))?;
        for i in next..next + acks {
            apply(&mut model, &record(i));
        }
        next += acks;
        let in_flight_committed = verify(backend, dir.path(), &model, next)
            .map_err(|e| format!("round {round}: {}", e.message().unwrap_or("failed")))?;
        in_flight_found += u64::from(in_flight_committed);
    }
    eprintln!(
        "{backend}: {kills} kills, {next} acknowledged records all present, \
         {in_flight_found} unacknowledged in-flight records found committed (allowed), {:.1?}",
        started.elapsed()
    );
    Ok(())
}

/// Kills children that are creating a brand-new store (each round in a fresh directory, after
/// a random delay of up to 15 ms from spawn, usually before the first acknowledgement), then
/// checks that the store opens and holds the acknowledged records. A node killed during its
/// very first start must be able to start again.
fn crash_on_create(backend: Backend) -> Result<(), Failed> {
    let kills = env_u64("SEEDFED_CRASH_CREATE_KILLS", 20)?;
    let seed = env_u64("SEEDFED_CRASH_SEED", 0x5eed)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xc4ea7e ^ backend as u64);
    let started = Instant::now();
    let (mut acked, mut before_first_ack, mut files_existed) = (0u64, 0u64, 0u64);
    for round in 0..kills {
        let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let delay = Duration::from_micros(rng.next_u64() % 15_000);
        let acks = run_child(backend, dir.path(), 0, 0, delay)
            .map_err(|e| format!("round {round}: {}", e.message().unwrap_or("failed")))?;
        // Whether the kill came after the child had started creating the store's files.
        let started_creating = std::fs::read_dir(dir.path())
            .map_err(|e| format!("read store dir: {e}"))?
            .next()
            .is_some();
        files_existed += u64::from(started_creating);
        let mut model = Model::new();
        for i in 0..acks {
            apply(&mut model, &record(i));
        }
        verify(backend, dir.path(), &model, acks)
            .map_err(|e| format!("round {round}: {}", e.message().unwrap_or("failed")))?;
        acked += acks;
        before_first_ack += u64::from(acks == 0);
    }
    eprintln!(
        "{backend}: {kills} kills during creation ({files_existed} after the store files \
         appeared, {before_first_ack} before the first acknowledgement), {acked} acknowledged \
         records all present, {:.1?}",
        started.elapsed()
    );
    Ok(())
}

/// Reopens the store and checks it holds exactly the state after `next` records (all
/// acknowledged ones) or after `next + 1` (the record in flight committed before the kill);
/// returns which of the two it was (`true`: the in-flight record is there).
fn verify(backend: Backend, dir: &Path, model: &Model, next: u64) -> Result<bool, Failed> {
    let store = store::open(dir, backend).map_err(|e| format!("reopen after kill: {e}"))?;
    let found = scan_all(&*store)?;
    let in_flight_committed = if &found == model {
        false
    } else {
        let mut with_next = model.clone();
        apply(&mut with_next, &record(next));
        if found != with_next {
            let missing = model.keys().filter(|k| !found.contains_key(*k)).count();
            let wrong = model
                .iter()
                .filter(|(k, v)| found.get(*k).is_some_and(|f| f != *v))
                .count();
            return Err(format!(
                "after {next} acknowledged records the store has {} entries, expected {} \
                 ({missing} missing, {wrong} with wrong values); not the state after {next} or \
                 {} records",
                found.len(),
                model.len(),
                next + 1
            )
            .into());
        }
        true
    };
    store.close().map_err(|e| format!("close: {e}"))?;
    Ok(in_flight_committed)
}
