//! Criterion benchmark of drawing one 120×40 frame of the key table with 100,
//! 10 000 and 100 000 keys: only the rows on screen are built, so the three
//! should cost the same. Prints criterion's estimates, then the ratio of the
//! largest organisation's frame to the smallest's (target ≤ 1.2, each < 1 ms).
//!
//! Run: `cargo bench --bench render`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, BenchmarkId, Criterion};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use keydeck::clock::{Clock, ManualClock};
use keydeck::tui::action::Action;
use keydeck::tui::app::App;
use keydeck::tui::testing::{loaded_app, synthetic_keys};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const SIZES: [usize; 3] = [100, 10_000, 100_000];

fn app_with(keys: usize) -> App {
    let now = chrono::Utc::now();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(now));
    let mut app = loaded_app(clock, synthetic_keys(keys, now), 120, 40);
    // The middle of the list, so the visible window is not the first rows.
    let middle = KeyEvent::new(KeyCode::Char('j'), KeyModifiers::NONE);
    for _ in 0..keys / 2 {
        app.update(Action::Key(middle));
    }
    app
}

/// One frame as the runner draws it: the whole view, diffed against the last.
/// The selection alternates, so every frame changes two rows.
fn frame(app: &mut App, terminal: &mut Terminal<TestBackend>, down: &mut bool) {
    let code = if *down {
        KeyCode::Char('j')
    } else {
        KeyCode::Char('k')
    };
    *down = !*down;
    app.update(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    terminal
        .draw(|f| keydeck::tui::view::draw(f, app))
        .expect("draw");
}

fn render(c: &mut Criterion) {
    let mut group = c.benchmark_group("render 120x40");
    for keys in SIZES {
        let mut app = app_with(keys);
        let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
        let mut down = true;
        group.bench_with_input(BenchmarkId::from_parameter(keys), &keys, |b, _| {
            b.iter(|| frame(&mut app, &mut terminal, &mut down));
        });
    }
    group.finish();
}

/// Median time of one frame over many, outside criterion, for the ratio line.
fn median_frame(keys: usize) -> Duration {
    let mut app = app_with(keys);
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
    let mut down = true;
    let mut samples: Vec<Duration> = (0..2_000)
        .map(|_| {
            let t = Instant::now();
            frame(&mut app, &mut terminal, &mut down);
            t.elapsed()
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

criterion_group!(benches, render);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    let medians: Vec<Duration> = SIZES.iter().map(|&n| median_frame(n)).collect();
    println!("\nrender 120x40, median of 2 000 frames (selection moving):");
    for (keys, median) in SIZES.iter().zip(&medians) {
        println!("  {keys:>7} keys  {median:>10.1?}");
    }
    let ratio = medians[2].as_secs_f64() / medians[0].as_secs_f64();
    println!("  ratio 100 000 ÷ 100 keys: {ratio:.2} (target ≤ 1.2; each < 1 ms)");
}
