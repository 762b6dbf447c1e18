//! A person signs in through the Worker (workerd) in headless Chromium: consent, the
//! emulator's sign-in page, the client's loopback redirect URI (`mcpgate_e2e::browser`).

use mcpgate_e2e::worker_setup::WorkerStack;

mcpgate_e2e::browser_scenario_tests!(WorkerStack, "worker");
