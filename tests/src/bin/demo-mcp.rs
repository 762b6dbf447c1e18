//! Run the demo MCP server: `demo-mcp [--port N]` (env: `DEMO_MCP_PORT`). Port 0 (default) lets
//! the OS choose. Binds 127.0.0.1 unless `DEMO_MCP_HOST` names another address (e.g. `0.0.0.0`
//! in a container). Prints `mcp_url=...` then serves until Ctrl-C.

use mcpgate_e2e::demo_mcp::DemoMcp;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("usage: demo-mcp [--port N]");
        return Ok(());
    }
    let port: u16 = args
        .iter()
        .position(|a| a == "--port")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| {
            args.iter()
                .find_map(|a| a.strip_prefix("--port=").map(str::to_owned))
        })
        .or_else(|| std::env::var("DEMO_MCP_PORT").ok())
        .map(|p| p.parse())
        .transpose()?
        .unwrap_or(0);
    let host: std::net::IpAddr = match std::env::var("DEMO_MCP_HOST") {
        Ok(h) if !h.is_empty() => h.parse()?,
        _ => [127, 0, 0, 1].into(),
    };
    let server = DemoMcp::start_on((host, port).into()).await?;
    println!("mcp_url={}", server.mcp_url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
