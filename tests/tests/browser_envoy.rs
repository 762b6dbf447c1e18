//! A person signs in through Envoy with the filter in headless Chromium: consent, the
//! emulator's sign-in page, the client's loopback redirect URI (`mcpgate_e2e::browser`).

use mcpgate_e2e::envoy_setup::GateStack;

mcpgate_e2e::browser_scenario_tests!(GateStack, "envoy");
