//! A ratatui backend for a terminal that is not the process's own: crossterm's
//! escape sequences written to any `Write`, with the size set by the session
//! (never queried from a tty) and the cursor position remembered, not asked for.

use std::io::{self, Write};

use ratatui::backend::{Backend, ClearType, CrosstermBackend, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};
use ratatui::{Terminal, TerminalOptions, Viewport};

pub struct SessionBackend<W: Write> {
    inner: CrosstermBackend<W>,
    size: Size,
    cursor: Position,
}

impl<W: Write> SessionBackend<W> {
    pub fn new(out: W, width: u16, height: u16) -> Self {
        Self {
            inner: CrosstermBackend::new(out),
            size: Size::new(width, height),
            cursor: Position::ORIGIN,
        }
    }
}

/// Blanks the alternate screen and shows the cursor: what both adapters do
/// last before leaving the alternate screen. After a resize, a terminal (or
/// multiplexer) that resizes its saved main screen differently from the
/// alternate one can let rows of the alternate screen show through on the
/// shell's screen once it is left; a blank one leaves nothing to show.
pub fn blank(out: &mut impl Write) -> io::Result<()> {
    use crossterm::style::{Attribute, SetAttribute};
    use crossterm::terminal::{Clear, ClearType};
    crossterm::execute!(
        out,
        SetAttribute(Attribute::Reset),
        Clear(ClearType::All),
        crossterm::cursor::MoveTo(0, 0),
        crossterm::cursor::Show,
    )
}

/// A backend that learns its size from the session's resize events, and
/// can mark where a frame begins and ends.
pub trait Resizable: Backend {
    /// The terminal is now `width`×`height`.
    fn set_size(&mut self, width: u16, height: u16);

    /// Begins (`true`) or ends a frame in synchronized output (DEC mode
    /// 2026): a terminal that knows the mode shows the frame whole once it
    /// ends, never half-drawn; others ignore it.
    fn synchronized(&mut self, begin: bool) -> Result<(), Self::Error>;
}

/// Writes the begin or end of synchronized output to `out`.
fn sync_mark(out: &mut impl Write, begin: bool) -> io::Result<()> {
    if begin {
        crossterm::queue!(out, crossterm::terminal::BeginSynchronizedUpdate)
    } else {
        crossterm::execute!(out, crossterm::terminal::EndSynchronizedUpdate)
    }
}

impl<W: Write> Resizable for SessionBackend<W> {
    fn set_size(&mut self, width: u16, height: u16) {
        self.size = Size::new(width, height);
    }

    fn synchronized(&mut self, begin: bool) -> io::Result<()> {
        sync_mark(&mut self.inner, begin)
    }
}

/// The local terminal: crossterm asks the tty for its size, nothing to remember.
impl<W: Write> Resizable for CrosstermBackend<W> {
    fn set_size(&mut self, _width: u16, _height: u16) {}

    fn synchronized(&mut self, begin: bool) -> io::Result<()> {
        sync_mark(self, begin)
    }
}

/// Draws one frame with `render`, wrapped in synchronized output (see
/// [`Resizable::synchronized`]) so that a slow link never shows half of it.
/// The end is written even when the frame fails, so the terminal is never
/// left holding its display.
pub fn draw<B: Resizable>(
    terminal: &mut Terminal<B>,
    render: impl FnOnce(&mut ratatui::Frame),
) -> Result<(), B::Error> {
    terminal.backend_mut().synchronized(true)?;
    let drawn = terminal.draw(render).map(|_| ());
    let ended = terminal.backend_mut().synchronized(false);
    drawn.and(ended)
}

/// The terminal is now `width`×`height`: the backend and the viewport follow
/// (the next frame is drawn in full).
pub fn resize<B: Resizable>(
    terminal: &mut Terminal<B>,
    width: u16,
    height: u16,
) -> Result<(), B::Error> {
    terminal.backend_mut().set_size(width, height);
    terminal.resize(ratatui::layout::Rect::new(0, 0, width, height))
}

/// A terminal of `width`×`height` over `out`, its viewport fixed to that size.
pub fn terminal<W: Write>(
    out: W,
    width: u16,
    height: u16,
) -> io::Result<Terminal<SessionBackend<W>>> {
    let area = ratatui::layout::Rect::new(0, 0, width, height);
    Terminal::with_options(
        SessionBackend::new(out, width, height),
        TerminalOptions {
            viewport: Viewport::Fixed(area),
        },
    )
}

impl<W: Write> Backend for SessionBackend<W> {
    type Error = io::Error;

    fn draw<'a, I>(&mut self, content: I) -> io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        self.inner.draw(content)
    }

    fn hide_cursor(&mut self) -> io::Result<()> {
        self.inner.hide_cursor()
    }

    fn show_cursor(&mut self) -> io::Result<()> {
        self.inner.show_cursor()
    }

    fn get_cursor_position(&mut self) -> io::Result<Position> {
        Ok(self.cursor)
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> io::Result<()> {
        let position = position.into();
        self.cursor = position;
        self.inner.set_cursor_position(position)
    }

    fn clear(&mut self) -> io::Result<()> {
        self.inner.clear()
    }

    fn clear_region(&mut self, clear_type: ClearType) -> io::Result<()> {
        self.inner.clear_region(clear_type)
    }

    fn size(&self) -> io::Result<Size> {
        Ok(self.size)
    }

    fn window_size(&mut self) -> io::Result<WindowSize> {
        Ok(WindowSize {
            columns_rows: self.size,
            pixels: Size::new(0, 0),
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Backend::flush(&mut self.inner)
    }
}
