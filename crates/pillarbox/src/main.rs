//! The `pillarbox` command line.

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(pillarbox::serve::run(pillarbox::config::Config::default()))
}
