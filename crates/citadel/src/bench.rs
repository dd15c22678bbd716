//! `citadel bench`: isolated runs measured side by side with the Deno-sidecar
//! anchor in one invocation, reported as ratios.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use std::sync::Arc;

use citadel_analyzer::Language;
use citadel_jail::{CommandSpec, Jail, JailConfig};
use citadel_pool::{EchoGateway, Gateway, Pool, PoolConfig, PoolRun};
use citadel_sandbox::{
    Capability, Grants, Isolation, Limits, NoHost, RunRequest, RunStatus, Sandbox,
};
use clap::Args;

use crate::{CliError, ResultExt};

const HELLO: &str = "return {processed: [1,2,3].map(x => x * 2).length}";
const LOOP: &str = "let s = 0; for (let i = 0; i < 1e7; i++) s += i; return s;";
const SLEEPER: &str = "await api.sleep(100); return input;";

#[derive(Args)]
pub(crate) struct BenchArgs {
    /// Isolated hello runs to time.
    #[arg(long, default_value_t = 5000)]
    runs: usize,
    /// Concurrent runs awaiting `api.sleep(100)` for the memory figure.
    #[arg(long, default_value_t = 1000)]
    concurrent: usize,
    /// Requests sent to the Deno anchor.
    #[arg(long, default_value_t = 200)]
    anchor_runs: usize,
    /// The Deno binary (default: $DENO, the npm package under /tmp/deno, or `deno` on PATH).
    #[arg(long)]
    deno: Option<PathBuf>,
    /// The anchor's directory (default: ../shared/anchors/deno-sidecar, searched upwards).
    #[arg(long)]
    anchor: Option<PathBuf>,
    /// Measure capability calls through the supervisor instead (kv, secrets,
    /// http.fetch, db.query, each next to its baseline).
    #[arg(long)]
    capabilities: bool,
    /// Runs of 200 calls each per capability, with --capabilities.
    #[arg(long, default_value_t = 20)]
    capability_runs: usize,
}

struct Stats {
    mean: Duration,
    p50: Duration,
    p99: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort_unstable();
    let n = samples.len().max(1);
    let mean = samples.iter().sum::<Duration>() / n as u32;
    let at = |q: f64| {
        samples
            .get(((n as f64 * q) as usize).min(n - 1))
            .copied()
            .unwrap_or_default()
    };
    Stats {
        mean,
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// CPU time of every live thread of a process (from the scheduler's own
/// accounting, in nanoseconds).
fn cpu_of_process(pid: u32) -> Duration {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Duration::ZERO;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .sum()
}

/// CPU time of a process and all its live descendants.
fn cpu_of_tree(pid: u32) -> Duration {
    let children: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    cpu_of_process(pid) + children.into_iter().map(cpu_of_tree).sum::<Duration>()
}

fn cpu_of(pids: &[u32]) -> Duration {
    pids.iter().map(|&p| cpu_of_tree(p)).sum()
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

pub(crate) fn bench(args: BenchArgs) -> Result<(), CliError> {
    if args.capabilities {
        return crate::bench_caps::capabilities(args.capability_runs);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .failed("cannot start the runtime")?;
    // First, while this process is small: forking a large process costs
    // page-table copies that are not the jail's.
    bench_command_jail();

    let sandbox = Sandbox::default();
    let run_once = |source: &str, grants: Grants, input: &str| {
        let script = sandbox.load(source, Language::Js);
        let req = RunRequest {
            input_json: input,
            limits: Limits::default(),
            grants,
            host: Rc::new(NoHost),
            cancel: None,
        };
        runtime.block_on(sandbox.run(&script, req))
    };

    // 1. Isolated hello runs, each in a fresh context, cache hit included.
    for _ in 0..200 {
        run_once(HELLO, Grants::NONE, "null");
    }
    let measure = |prewarm: bool, warm: bool| {
        let mut samples = Vec::with_capacity(args.runs);
        let started = Instant::now();
        runtime.block_on(async {
            for _ in 0..args.runs {
                if prewarm {
                    // Idle time between requests: make the next fresh isolate
                    // and free the last used one.
                    sandbox.prewarm(1).expect("an isolate can be created");
                }
                let t = Instant::now();
                let script = sandbox.load(HELLO, Language::Js);
                let limits = Limits {
                    isolation: if warm {
                        Isolation::Version
                    } else {
                        Isolation::Run
                    },
                    ..Limits::default()
                };
                let req = RunRequest {
                    input_json: "null",
                    limits,
                    grants: Grants::NONE,
                    host: Rc::new(NoHost),
                    cancel: None,
                };
                let out = sandbox.run_as_version(&script, req, "bench@1").await;
                samples.push(t.elapsed());
                assert_eq!(
                    out.status,
                    RunStatus::Succeeded,
                    "the hello run must succeed: {:?}",
                    out.error
                );
            }
        });
        (stats(samples), started.elapsed())
    };
    let (cold, cold_total) = measure(false, false);
    let (hello, warm_total) = measure(true, false);
    let (version, version_total) = measure(false, true);
    println!(
        "citadel isolated hello run ({} runs each; a fresh context per run in a reused runtime, compile cache hit):",
        args.runs
    );
    println!(
        "  isolate made ahead:   mean {:.4} ms   p50 {:.4} ms   p99 {:.4} ms   (with making it: {:.4} ms/run)",
        ms(hello.mean),
        ms(hello.p50),
        ms(hello.p99),
        ms(warm_total) / args.runs as f64
    );
    println!(
        "  isolate made inline:  mean {:.4} ms   p50 {:.4} ms   p99 {:.4} ms   ({:.0} runs/s on one core)",
        ms(cold.mean),
        ms(cold.p50),
        ms(cold.p99),
        args.runs as f64 / cold_total.as_secs_f64()
    );
    println!(
        "  isolation \"version\" (a warm context reused): mean {:.4} ms   p50 {:.4} ms   p99 {:.4} ms   ({:.0} runs/s on one core)",
        ms(version.mean),
        ms(version.p50),
        ms(version.p99),
        args.runs as f64 / version_total.as_secs_f64()
    );
    println!(
        "  compilations: {} (the script compiled once)",
        sandbox.compilations()
    );

    // 2. Memory per in-flight run awaiting the host.
    let rss_before = rss_bytes();
    let grants = Grants::NONE.with(Capability::Sleep);
    let (peak_rss, outcomes) = runtime.block_on(async {
        let script = sandbox.load(SLEEPER, Language::Js);
        let runs = (0..args.concurrent).map(|_| {
            let req = RunRequest {
                input_json: "1",
                limits: Limits::default(),
                grants,
                host: Rc::new(NoHost),
                cancel: None,
            };
            let script = &script;
            let sandbox = &sandbox;
            async move { sandbox.run(script, req).await }
        });
        let sampler = async {
            tokio::time::sleep(Duration::from_millis(60)).await;
            rss_bytes()
        };
        let (outcomes, rss) = tokio::join!(futures_util::future::join_all(runs), sampler);
        (rss, outcomes)
    });
    let ok = outcomes
        .iter()
        .filter(|o| o.status == RunStatus::Succeeded)
        .count();
    let heap: u64 =
        outcomes.iter().map(|o| o.peak_memory_bytes).sum::<u64>() / outcomes.len().max(1) as u64;
    let per_run_rss = peak_rss.saturating_sub(rss_before) / args.concurrent.max(1) as u64;
    println!(
        "{} concurrent runs awaiting api.sleep(100): {ok} succeeded",
        args.concurrent
    );
    println!(
        "  memory per in-flight run: {:.1} KiB process RSS, {:.1} KiB isolate heap peak",
        per_run_rss as f64 / 1024.0,
        heap as f64 / 1024.0
    );

    // 3. Compute: a 10M-iteration loop.
    let t = Instant::now();
    let out = run_once(LOOP, Grants::NONE, "null");
    let loop_time = t.elapsed();
    // The same program in plain QuickJS: no limits, no interrupt handler,
    // QuickJS's own allocator, best of three.
    let plain = (0..3)
        .filter_map(|_| citadel_sandbox::yardstick::plain_quickjs(LOOP, Language::Js).ok())
        .min();
    let best = (0..2)
        .map(|_| {
            let t = Instant::now();
            run_once(LOOP, Grants::NONE, "null");
            t.elapsed()
        })
        .chain([loop_time])
        .min()
        .unwrap_or(loop_time);
    match plain {
        Some(plain) => println!(
            "citadel 10M-iteration loop: {:.1} ms (best of three {:.1} ms; result {}); plain QuickJS {:.1} ms: {:.2}x",
            ms(loop_time),
            ms(best),
            out.result_value(),
            ms(plain),
            ms(best) / ms(plain)
        ),
        None => println!(
            "citadel 10M-iteration loop: {:.1} ms (result {})",
            ms(loop_time),
            out.result_value()
        ),
    }

    // 4. Through the pool of jailed sandbox hosts, and the command jail.
    let pooled = match bench_pool(&args) {
        Ok(stats) => Some(stats),
        Err(e) => {
            println!("pooled runs: skipped: {e}");
            None
        }
    };

    // 5. The anchor, in the same invocation.
    match Anchor::start(&args) {
        Err(why) => println!("deno-sidecar anchor: skipped: {why}"),
        Ok(mut anchor) => {
            let measured = Measured {
                ahead: hello,
                inline: cold,
                pooled,
                loop_time,
            };
            if let Err(e) = anchor.compare(&args, &measured) {
                println!("deno-sidecar anchor: failed: {e}");
            }
        }
    }
    Ok(())
}

/// Citadel's figures, for the ratios against the anchor.
struct Measured {
    ahead: Stats,
    inline: Stats,
    pooled: Option<Stats>,
    loop_time: Duration,
}

/// Hello runs through jailed sandbox hosts: latency, and throughput with one
/// host against one host per core. Returns the latency below saturation.
fn bench_pool(args: &BenchArgs) -> Result<Stats, String> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let job = || PoolRun {
        tenant: "bench".into(),
        source: HELLO.into(),
        language: Language::Js,
        input_json: "null".into(),
        limits: Limits::default(),
        grants: Grants::NONE,
        cancel: None,
        version_key: None,
        fault: None,
    };
    let start = |size: usize| {
        let mut config = PoolConfig::new().map_err(|e| e.to_string())?;
        config.size = size;
        config.share_tenants = true;
        // No host is recycled while measured, so its CPU stays countable.
        config.runs_per_host = u64::MAX;
        let _guard = runtime.enter();
        Pool::start(config).map_err(|e| e.to_string())
    };
    let pool = start(cores)?;
    let gateway: Arc<dyn Gateway> = Arc::new(EchoGateway);
    let latency = runtime.block_on(async {
        for _ in 0..200 {
            pool.run(job(), Arc::clone(&gateway)).await;
        }
        let mut samples = Vec::with_capacity(args.runs);
        for _ in 0..args.runs {
            let t = Instant::now();
            let out = pool.run(job(), Arc::clone(&gateway)).await;
            samples.push(t.elapsed());
            if out.status != RunStatus::Succeeded {
                return Err(format!("a pooled run failed: {:?}", out.error));
            }
        }
        Ok(stats(samples))
    })?;
    // The same with a millisecond between runs, as a service below
    // saturation sees it: the host has made the next isolate in between.
    let paced = runtime.block_on(async {
        let mut samples = Vec::with_capacity(args.runs / 4);
        for _ in 0..args.runs / 4 {
            tokio::time::sleep(Duration::from_millis(1)).await;
            let t = Instant::now();
            let out = pool.run(job(), Arc::clone(&gateway)).await;
            samples.push(t.elapsed());
            if out.status != RunStatus::Succeeded {
                return Err(format!("a pooled run failed: {:?}", out.error));
            }
        }
        Ok(stats(samples))
    })?;
    pool.shutdown();
    println!("citadel hello run through the jailed sandbox-host pool ({cores} hosts):");
    println!(
        "  back to back ({} runs): mean {:.4} ms   p50 {:.4} ms   p99 {:.4} ms",
        args.runs,
        ms(latency.mean),
        ms(latency.p50),
        ms(latency.p99)
    );
    println!(
        "  1 ms apart   ({} runs): mean {:.4} ms   p50 {:.4} ms   p99 {:.4} ms",
        args.runs / 4,
        ms(paced.mean),
        ms(paced.p50),
        ms(paced.p99)
    );

    let throughput = |size: usize| -> Result<(f64, Duration, Duration), String> {
        let pool = start(size)?;
        let window = Duration::from_secs(2);
        // Warm the hosts up, then count CPU over the window: this process
        // (supervisor and clients) and the host processes.
        runtime.block_on(async {
            for _ in 0..100 {
                pool.run(job(), Arc::clone(&gateway)).await;
            }
        });
        let hosts = pool.host_pids();
        let (own_before, hosts_before) = (cpu_of_tree(std::process::id()), cpu_of(&hosts));
        let done = runtime.block_on(async {
            let clients = (0..8 * size).map(|_| {
                let pool = pool.clone();
                let gateway = Arc::clone(&gateway);
                tokio::spawn(async move {
                    let end = Instant::now() + window;
                    let mut n = 0u64;
                    while Instant::now() < end {
                        if pool.run(job(), Arc::clone(&gateway)).await.status
                            == RunStatus::Succeeded
                        {
                            n += 1;
                        }
                    }
                    n
                })
            });
            let mut total = 0;
            for c in clients.collect::<Vec<_>>() {
                total += c.await.unwrap_or(0);
            }
            total
        });
        let hosts_cpu = cpu_of(&hosts).saturating_sub(hosts_before);
        let own_cpu = cpu_of_tree(std::process::id())
            .saturating_sub(own_before)
            .saturating_sub(hosts_cpu);
        pool.shutdown();
        let runs = done.max(1) as u32;
        Ok((
            done as f64 / window.as_secs_f64(),
            own_cpu / runs,
            hosts_cpu / runs,
        ))
    };
    let (one, own1, host1) = throughput(1)?;
    let (all, own, host) = throughput(cores)?;
    println!(
        "  throughput: {one:.0} runs/s with 1 host, {all:.0} runs/s with {cores} hosts ({:.2}x)",
        all / one
    );
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "  CPU per run: {:.1} us in this process (supervisor and clients) + {:.1} us in the hosts with 1 host; {:.1} + {:.1} us with {cores}",
        us(own1),
        us(host1),
        us(own),
        us(host)
    );
    Ok(paced)
}

/// Starting a command in a fresh jail against plain fork+exec of /bin/true.
fn bench_command_jail() {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let Ok(jail) = Jail::new(JailConfig::default()) else {
        return;
    };
    let spec = CommandSpec {
        program: "/bin/true".into(),
        ..CommandSpec::default()
    };
    let mut jailed = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        match runtime.block_on(jail.run(&spec)) {
            Ok(out) if out.success() => jailed.push(t.elapsed()),
            other => {
                println!("command jail: /bin/true failed: {other:?}");
                return;
            }
        }
    }
    let mut plain = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let _ = Command::new("/bin/true").status();
        plain.push(t.elapsed());
    }
    let (jailed, plain) = (stats(jailed), stats(plain));
    println!(
        "command jail start-up (/bin/true, 50 runs): jailed mean {:.2} ms, plain fork+exec {:.2} ms ({:.1}x)",
        ms(jailed.mean),
        ms(plain.mean),
        ms(jailed.mean) / ms(plain.mean)
    );
}

struct Anchor {
    child: Child,
    port: u16,
    deno: PathBuf,
}

impl Drop for Anchor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_deno(args: &BenchArgs) -> Option<PathBuf> {
    let candidates = [
        args.deno.clone(),
        std::env::var_os("DENO").map(PathBuf::from),
        Some(PathBuf::from(
            "/tmp/deno/node_modules/@deno/linux-x64-glibc/deno",
        )),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .or_else(|| {
            let path = std::env::var_os("PATH")?;
            std::env::split_paths(&path)
                .map(|d| d.join("deno"))
                .find(|p| p.is_file())
        })
}

fn find_anchor(args: &BenchArgs) -> Option<PathBuf> {
    if let Some(dir) = &args.anchor {
        return Some(dir.clone());
    }
    let mut dir = std::env::current_dir().ok()?;
    loop {
        let candidate = dir.join("shared/anchors/deno-sidecar");
        if candidate.join("server.js").is_file() {
            return Some(candidate);
        }
        if !dir.pop() {
            return None;
        }
    }
}

impl Anchor {
    fn start(args: &BenchArgs) -> Result<Anchor, String> {
        let deno = find_deno(args).ok_or("Deno is not installed (see README: Benchmarks)")?;
        let dir = find_anchor(args)
            .ok_or("the anchor directory shared/anchors/deno-sidecar was not found")?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = Command::new(&deno)
            .args([
                "run",
                "--unstable-worker-options",
                "--allow-net=127.0.0.1",
                "--allow-read",
                "--allow-env",
                "server.js",
            ])
            .current_dir(&dir)
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", deno.display()))?;
        let anchor = Anchor { child, port, deno };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if anchor
                .request("GET", "/health", "")
                .is_ok_and(|b| b == "ok")
            {
                return Ok(anchor);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("the anchor did not answer /health within 20 s".into())
    }

    fn request(&self, method: &str, path: &str, body: &str) -> Result<String, String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .map_err(|e| e.to_string())?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .map_err(|e| e.to_string())?;
        let (head, body) = response
            .split_once("\r\n\r\n")
            .ok_or("malformed response")?;
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            return Ok(dechunk(body));
        }
        Ok(body.to_owned())
    }

    fn execute(&self, code: &str) -> Result<(Duration, f64), String> {
        let body =
            serde_json::json!({ "code": code, "input": null, "timeout_ms": 60000 }).to_string();
        let t = Instant::now();
        let reply = self.request("POST", "/execute", &body)?;
        let elapsed = t.elapsed();
        let v: serde_json::Value =
            serde_json::from_str(&reply).map_err(|e| format!("{e}: {reply}"))?;
        if v["ok"] != true {
            return Err(format!("the anchor failed the script: {reply}"));
        }
        Ok((elapsed, v["duration_ms"].as_f64().unwrap_or(f64::NAN)))
    }

    fn compare(&mut self, args: &BenchArgs, measured: &Measured) -> Result<(), String> {
        let (hello, cold, loop_time) = (&measured.ahead, &measured.inline, measured.loop_time);
        for _ in 0..5 {
            self.execute(HELLO)?;
        }
        let mut client = Vec::with_capacity(args.anchor_runs);
        let mut worker = Vec::with_capacity(args.anchor_runs);
        for _ in 0..args.anchor_runs {
            let (elapsed, server_ms) = self.execute(HELLO)?;
            client.push(elapsed);
            worker.push(Duration::from_secs_f64(server_ms / 1e3));
        }
        let client = stats(client);
        let worker = stats(worker);
        println!(
            "deno-sidecar anchor hello run ({} requests, fresh Worker each):",
            args.anchor_runs
        );
        println!(
            "  worker only: mean {:.3} ms   p50 {:.3} ms   p99 {:.3} ms",
            ms(worker.mean),
            ms(worker.p50),
            ms(worker.p99)
        );
        println!(
            "  through HTTP: mean {:.3} ms   p50 {:.3} ms   p99 {:.3} ms",
            ms(client.mean),
            ms(client.p50),
            ms(client.p99)
        );
        println!(
            "  ratio, anchor worker mean / citadel mean: {:.0}x with the isolate made ahead, {:.0}x made inline",
            ms(worker.mean) / ms(hello.mean),
            ms(worker.mean) / ms(cold.mean)
        );
        println!(
            "  ratio, anchor through HTTP / citadel mean: {:.0}x made ahead, {:.0}x made inline",
            ms(client.mean) / ms(hello.mean),
            ms(client.mean) / ms(cold.mean)
        );

        if let Some(pooled) = &measured.pooled {
            println!(
                "  ratio, anchor worker mean / citadel through the jailed pool (1 ms apart): {:.0}x   (through HTTP: {:.0}x)",
                ms(worker.mean) / ms(pooled.mean),
                ms(client.mean) / ms(pooled.mean)
            );
        }

        let (_, loop_worker_ms) = self.execute(LOOP)?;
        println!(
            "deno 10M-iteration loop (JIT, in its Worker): {:.1} ms; citadel (interpreter) {:.1} ms: {:.1}x slower on pure compute",
            loop_worker_ms,
            ms(loop_time),
            ms(loop_time) / loop_worker_ms
        );

        // `deno run` of the hello script: a process per run.
        let file = std::env::temp_dir().join(format!("citadel-bench-{}.js", std::process::id()));
        std::fs::write(
            &file,
            format!("const r = (() => {{ {HELLO} }})(); console.log(JSON.stringify(r));"),
        )
        .map_err(|e| e.to_string())?;
        let mut runs = Vec::new();
        for _ in 0..10 {
            let t = Instant::now();
            let status = Command::new(&self.deno)
                .args(["run", "--quiet"])
                .arg(&file)
                .stdout(Stdio::null())
                .status();
            runs.push(t.elapsed());
            if !status.is_ok_and(|s| s.success()) {
                break;
            }
        }
        let _ = std::fs::remove_file(Path::new(&file));
        let deno_run = stats(runs);
        println!(
            "deno run (a process per run, 10 runs): mean {:.1} ms: ratio {:.0}x (made inline)",
            ms(deno_run.mean),
            ms(deno_run.mean) / ms(cold.mean)
        );
        Ok(())
    }
}

/// Decodes an HTTP/1.1 chunked body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}
