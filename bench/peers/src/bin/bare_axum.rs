//! The framework's limit for bench/run: axum answering GETs with fixed bytes, no middleware,
//! no database. Same runtime shape as `cronstack serve` (multi-thread, 4 workers per core).
//!
//! bare_axum LISTEN PATH=FILE [PATH=FILE …]   (FILE holds the body served at PATH)

use axum::Router;
use axum::http::header;
use axum::routing::get;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let listen = args.get(1).ok_or("usage: bare_axum LISTEN PATH=FILE…")?.clone();
    let mut app = Router::new();
    for pair in &args[2..] {
        let (path, file) = pair.split_once('=').ok_or("PATH=FILE")?;
        let body: &'static [u8] = Box::leak(std::fs::read(file)?.into_boxed_slice());
        app =
            app.route(path, get(move || async move { ([(header::CONTENT_TYPE, "application/json")], body) }));
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(cores * 4).enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        println!("listening on {listen}");
        axum::serve(listener, app).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
