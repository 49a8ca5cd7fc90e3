//! HTTP server: axum router, extractors, error envelopes, rate limits, OpenAPI.
//!
//! Start-up is a library so tests start the real server on port 0 (see `test-support`).

pub mod backend;
pub mod context;
pub mod envelope;
pub mod error;
pub mod extract;
pub mod guard;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod state;

use crate::error::ApiError;
use crate::state::AppState;
use app::App;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use utoipa_swagger_ui::SwaggerUi;

/// Builds the complete router for `app`.
pub fn router(app: App) -> Result<Router, prometheus::Error> {
    let state = AppState {
        metrics: Arc::new(metrics::HttpMetrics::new()?),
        app,
    };
    let max_body = state.app.settings.server.max_body_bytes;

    let authenticated = Router::new()
        .route("/auth/revoke", post(routes::auth::revoke))
        .route("/user/profile", get(routes::users::profile))
        .route(
            "/projects",
            get(routes::projects::list).post(routes::projects::create),
        )
        .route(
            "/datasets/upload",
            post(routes::datasets::upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/datasets", get(routes::datasets::list))
        .route(
            "/datasets/{dataset_id}",
            get(routes::datasets::get).delete(routes::datasets::delete),
        )
        .route(
            "/datasets/{dataset_id}/validate",
            post(routes::datasets::validate),
        )
        .route(
            "/datasets/{dataset_id}/export",
            get(routes::datasets::export),
        )
        .route("/datasets/{dataset_id}/items", get(routes::datasets::items))
        .route("/models", get(routes::models::list))
        .route("/models/{model_id}", get(routes::models::get))
        .route(
            "/inference/{workflow_id}/predict",
            // Base64 images are a third larger than the image limit they must respect.
            post(routes::inference::predict).layer(DefaultBodyLimit::max(
                usize::try_from(state.app.settings.inference.max_image_bytes)
                    .unwrap_or(usize::MAX / 2)
                    .saturating_mul(4)
                    / 3
                    + 64 * 1024,
            )),
        )
        .route(
            "/inference/{workflow_id}/batch",
            post(routes::inference::batch).layer(DefaultBodyLimit::max(64 * 1024 * 1024)),
        )
        .route(
            "/inference/{workflow_id}/batch/{job_id}",
            get(routes::inference::batch_status),
        )
        .route("/chat/message", post(routes::chat::message))
        .route(
            "/chat/sessions/{session_id}",
            get(routes::chat::get).delete(routes::chat::delete),
        )
        .route(
            "/workflows",
            get(routes::workflows::list).post(routes::workflows::create),
        )
        .route(
            "/workflows/{workflow_id}",
            get(routes::workflows::get).delete(routes::workflows::cancel),
        )
        .route(
            "/workflows/{workflow_id}/metrics",
            get(routes::workflows::metrics),
        )
        .route(
            "/workflows/{workflow_id}/logs",
            get(routes::workflows::logs),
        )
        .route(
            "/projects/{project_id}",
            get(routes::projects::get)
                .patch(routes::projects::update)
                .delete(routes::projects::delete),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::require_auth,
        ));

    let edge_layer = |group| {
        axum::middleware::from_fn_with_state((state.clone(), group), envelope::require_auth)
    };
    let upload_limit = usize::try_from(state.app.settings.segmentation.max_upload_bytes)
        .unwrap_or(usize::MAX / 2)
        .saturating_add(1024 * 1024);
    let edge = Router::new()
        .route(
            "/upload",
            post(routes::segmentation::upload).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route_layer(edge_layer(envelope::RouteGroup::Upload))
        .merge(
            Router::new()
                .route("/segment", post(routes::segmentation::segment))
                .route_layer(edge_layer(envelope::RouteGroup::Segment)),
        )
        .merge(
            Router::new()
                .route("/tasks/{id}", get(routes::segmentation::task))
                .route("/results", get(routes::segmentation::results))
                .route("/results/{id}", get(routes::segmentation::result))
                .route_layer(edge_layer(envelope::RouteGroup::Results)),
        )
        .route("/files/{kind}/{id}", get(routes::segmentation::file));

    let public = Router::new()
        .route("/auth/token", post(routes::auth::token))
        .route("/auth/refresh", post(routes::auth::refresh))
        .route("/auth/register", post(routes::auth::register))
        .route(
            "/datasets/{dataset_id}/items/{item_id}/{file}",
            get(routes::datasets::item_file),
        )
        .route(
            "/ws/workflows/{workflow_id}",
            get(routes::ws::workflow_events),
        );

    // The spec's WebSocket example connects without the `/api/v1` prefix; both work.
    let mut root = Router::new().route(
        "/ws/workflows/{workflow_id}",
        get(routes::ws::workflow_events),
    );
    if !state.app.settings.internal.token.is_empty() {
        root = root.merge(
            Router::new()
                .route(
                    "/internal/orchestrator/create-workflow",
                    post(routes::internal::create_workflow),
                )
                .route(
                    "/internal/models/prepare",
                    post(routes::internal::prepare_model),
                )
                .route_layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    routes::internal::require_internal_token,
                )),
        );
    }

    if state.app.settings.console.enabled {
        root = root.merge(routes::console::router());
    }

    Ok(Router::new()
        .nest("/api/v1", authenticated.merge(public).merge(edge))
        .merge(root)
        .route("/health", get(routes::health::health))
        .route("/metrics", get(routes::health::metrics))
        .merge(SwaggerUi::new("/docs").url("/api/v1/openapi.json", openapi::document()))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::bound_request,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            context::request_context,
        ))
        .with_state(state))
}

async fn no_route(request: Request) -> Response {
    let path = request.uri().path();
    envelope::error_for_path(
        path,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("No route for {path}"),
        serde_json::json!({ "path": path }),
    )
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::method_not_allowed(request.method().as_str(), request.uri().path())
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let mut response = ApiError::internal("handler panicked").into_response();
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

/// A bound, not yet running server.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    router: Router,
    grace: std::time::Duration,
}

impl Server {
    /// Binds the configured address (port 0 picks a free port) and builds the router.
    pub async fn bind(app: App) -> std::io::Result<Self> {
        let listener = TcpListener::bind(&app.settings.server.bind).await?;
        let grace = std::time::Duration::from_secs(app.settings.server.shutdown_grace_secs);
        let router = router(app).map_err(std::io::Error::other)?;
        Ok(Self {
            listener,
            router,
            grace,
        })
    }

    /// Binds `segmentation.backend_bind` with the segmentation backend API.
    pub async fn bind_backend(app: App) -> std::io::Result<Self> {
        let listener = TcpListener::bind(&app.settings.segmentation.backend_bind).await?;
        let grace = std::time::Duration::from_secs(app.settings.server.shutdown_grace_secs);
        let state = AppState {
            metrics: Arc::new(metrics::HttpMetrics::new().map_err(std::io::Error::other)?),
            app,
        };
        Ok(Self {
            listener,
            router: backend::router(state),
            grace,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then stops accepting and drains in-flight requests
    /// for at most `server.shutdown_grace_secs` (connections still open then are dropped).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        // Responses are written whole; Nagle's algorithm would only hold back the tail of a
        // large one until the client's delayed ACK.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        let (signalled, deadline) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            shutdown.await;
            let _ = signalled.send(());
        };
        let serve = axum::serve(listener, service)
            .with_graceful_shutdown(shutdown)
            .into_future();
        let grace = self.grace;
        tokio::select! {
            result = serve => result,
            () = async {
                if deadline.await.is_err() {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(grace_secs = grace.as_secs(), "requests still running after the grace period: dropped");
                Ok(())
            }
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received, draining requests");
}
