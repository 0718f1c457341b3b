//! A tmux server for end-to-end tests of what a terminal shows (the TUI, progress bars).

use std::process::Command;

use super::{TestDaemon, eventually};

/// A tmux server with one session running a command; killed on drop.
pub struct Tmux {
    server: String,
}

impl Tmux {
    pub fn start(d: &TestDaemon, command: &str) -> Tmux {
        let server = d.dir.path().join("tmux.sock").display().to_string();
        let status = Command::new("tmux")
            .args([
                "-S",
                &server,
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "100",
                "-y",
                "30",
            ])
            .arg(command)
            .status()
            .expect("tmux is needed for the TUI tests (apt-get install tmux)");
        assert!(status.success(), "tmux new-session failed");
        Tmux { server }
    }

    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-S", &self.server, "capture-pane", "-p", "-t", "t"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types text literally.
    pub fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "t", "-l", text]);
    }

    /// Sends keys by tmux name (`Enter`, `C-d`, `BSpace`).
    pub fn key(&self, key: &str) {
        self.tmux(&["send-keys", "-t", "t", key]);
    }

    pub fn tmux(&self, args: &[&str]) {
        let status = Command::new("tmux")
            .args(["-S", &self.server])
            .args(args)
            .status()
            .expect("tmux");
        assert!(status.success(), "tmux {args:?} failed");
    }

    /// Waits until the screen shows `text`; panics with the screen when it does not.
    pub fn wait_for(&self, text: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the screen never showed {text:?}; it shows:\n{screen}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Waits until the screen no longer shows `text`.
    pub fn wait_gone(&self, text: &str) -> String {
        eventually(20, &format!("{text:?} to leave the screen"), || {
            let s = self.screen();
            (!s.contains(text)).then_some(s)
        })
    }

    pub fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["-S", &self.server, "has-session", "-t", "t"])
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-S", &self.server, "kill-server"])
            .stderr(std::process::Stdio::null())
            .status();
    }
}
