//! The scheduler that drives the runs through the ports, one poll at a time, and the runs
//! of one history.

#[allow(unused_imports)]
use crate::*;

pub(crate) type RunFuture<'a> = Pin<Box<dyn Future<Output = UserReport> + 'a>>;

/// Polls the runs in a seeded order until all finish; time jumps when every run sleeps.
pub(crate) fn drive(
    w: &Rc<RefCell<World>>,
    first_run: usize,
    mut runs: Vec<RunFuture<'_>>,
    rng: &mut Rng,
) -> Vec<UserReport> {
    let n = runs.len();
    let mut out: Vec<Option<UserReport>> = vec![None; n];
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000_000 {
        let now = w.borrow().now;
        let gone = |i: usize| w.borrow().crashed[first_run + i];
        let runnable: Vec<usize> = (0..n)
            .filter(|&i| {
                out[i].is_none()
                    && !gone(i)
                    && w.borrow().sleeping[first_run + i].is_none_or(|t| t <= now)
            })
            .collect();
        if runnable.is_empty() {
            if (0..n).all(|i| out[i].is_some() || gone(i)) {
                // A crashed run leaves no report.
                return out.into_iter().flatten().collect();
            }
            let next = (0..n)
                .filter(|&i| out[i].is_none() && !gone(i))
                .filter_map(|i| w.borrow().sleeping[first_run + i])
                .min()
                .expect("a run that is not finished and not runnable sleeps");
            w.borrow_mut().now = next;
            continue;
        }
        let i = runnable[rng.below(runnable.len())];
        if let Poll::Ready(r) = runs[i].as_mut().poll(&mut cx) {
            out[i] = Some(r);
        }
    }
    panic!("the runs made no progress in a million steps");
}

/// The credentials a run starts with: self-rotation reads them from the `acme/web` secrets
/// (as the job does when it starts); a dedicated identity is another user.
pub(crate) fn step_key(w: &World, self_rotating: bool) -> Option<StepKey> {
    if !self_rotating {
        return None;
    }
    match w.holds(&Consumer {
        pull_requests: true,
        scope: web(),
        secrets: SecretNames::default(),
    }) {
        (Some(id), Some(s)) if id == s => Some(StepKey {
            secret: SecretString::from(secret_of(&id)),
            id,
        }),
        _ => None,
    }
}

/// Runs `commands` concurrently on the shared world, with a seeded schedule.
pub(crate) fn run_all(
    w: &Rc<RefCell<World>>,
    spec: &UserSpec,
    commands: &[(Command, bool)],
    self_rotating: bool,
    first_run: usize,
    rng: &mut Rng,
) -> Vec<UserReport> {
    let n = commands.len();
    let sims: Vec<Sim> = (0..n)
        .map(|i| Sim {
            w: w.clone(),
            run: first_run + i,
        })
        .collect();
    let step_keys: Vec<Option<StepKey>> = (0..n)
        .map(|_| step_key(&w.borrow(), self_rotating))
        .collect();
    let opts: Vec<Options> = commands
        .iter()
        .map(|(_, force)| Options {
            force: *force,
            // Self-rotation runs in the repository whose secrets it reads (written last).
            own_repository: self_rotating.then(|| "acme/web".to_owned()),
            ..Options::default()
        })
        .collect();
    let stop = aws_key_rotator::ports::Stop::default();
    let leases: Vec<LeaseSettings> = (0..n)
        .map(|i| LeaseSettings {
            run_id: format!("sim-run-{}", first_run + i),
            settle: StdDuration::from_secs(3),
            ttl: Duration::minutes(45),
            github: None,
            call_timeout: Duration::seconds(30),
        })
        .collect();
    let ctxs: Vec<Ctx<'_, Sim>> = (0..n)
        .map(|i| Ctx {
            ports: &sims[i],
            verify: VerifySettings {
                timeout: StdDuration::from_secs(30 * 60),
                poll: StdDuration::from_secs(10),
            },
            events: &sims[i],
            step_key: step_keys[i].as_ref(),
            opts: &opts[i],
            dry_run: false,
            lease: &leases[i],
            stop: &stop,
        })
        .collect();
    let futures: Vec<RunFuture<'_>> = ctxs
        .iter()
        .zip(commands)
        .map(|(ctx, (cmd, _))| Box::pin(run::run_user(ctx, spec, *cmd)) as RunFuture<'_>)
        .collect();
    drive(w, first_run, futures, rng)
}
