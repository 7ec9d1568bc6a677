//! Terminal input: a thread reads crossterm events and sends them as actions.

use std::thread::JoinHandle;
use std::time::Duration;

use crossterm::event::{self, Event};
use tokio::sync::mpsc::UnboundedSender;

use super::action::Action;

/// Reads keys and resizes until the receiving side goes away.
pub fn spawn_input_thread(tx: UnboundedSender<Action>) -> JoinHandle<()> {
    std::thread::spawn(move || loop {
        if tx.is_closed() {
            return;
        }
        match event::poll(Duration::from_millis(200)) {
            Ok(true) => {}
            Ok(false) => continue,
            // The terminal is gone (e.g. SSH dropped): SIGHUP does the rest.
            Err(_) => return,
        }
        let action = match event::read() {
            Ok(Event::Key(key)) => Action::Key(key),
            Ok(Event::Resize(w, h)) => Action::Resize(w, h),
            Ok(Event::Paste(text)) => Action::Paste(text),
            Ok(_) => continue,
            Err(_) => return,
        };
        if tx.send(action).is_err() {
            return;
        }
    })
}
