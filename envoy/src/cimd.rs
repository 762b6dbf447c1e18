//! Client ID Metadata Documents need the filter to fetch from hosts nobody listed in advance.
//! A Wasm filter reaches only Envoy clusters, so documents work when `cimd_cluster` names a
//! dynamic forward proxy cluster, or when every host of a `cimd` allow-list has its own
//! cluster in `clusters`. Otherwise they are switched off before the core is built, so the
//! metadata does not advertise what the filter cannot fetch.

use mcpgate_filter::config::{Cimd, Config};

use crate::config::HostConfig;

/// Switches metadata documents off when this Envoy cannot fetch them; says why in the log.
pub fn reachable(host: &HostConfig, config: &mut Config) {
    if host.cimd_cluster.is_some() {
        return;
    }
    let missing = match &config.cimd {
        Cimd::Off => return,
        Cimd::Any => "any host".to_string(),
        Cimd::Hosts(hosts) => match hosts.iter().find(|h| !host.clusters.contains_key(*h)) {
            None => return,
            Some(h) => h.clone(),
        },
    };
    log::info!(
        "mcpgate: Client ID Metadata Documents are off: no cluster reaches {missing} (set \
         cimd_cluster to a dynamic forward proxy cluster, or list each cimd host in clusters)"
    );
    config.cimd = Cimd::Off;
}
