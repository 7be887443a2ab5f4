//! `stella health`: the standard gRPC health check (`grpc.health.v1.Health/Check`) of one
//! service, for container health checks and operators.
//!
//! The health service needs no Authority token, so this command reads none and sends none. It
//! uses the service URL and the TLS options of every other command, so a probe of the attestor,
//! which requires client certificates, needs `--tls-cert` and `--tls-key` as well.

use clap::{Args, ValueEnum};
use stella_proto::attestor::v1::attestor_server;
use stella_proto::gate::v1::gate_server;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::Services;
use super::config;
use super::output::{Exit, Failure, Report};
use crate::ClientError;
use crate::Service;
use crate::transport::open_channel;

/// Arguments of `stella health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The service to check, at the URL of --attestor or --gate.
    #[arg(value_enum, value_name = "SERVICE")]
    pub service: HealthTarget,
}

/// The service that `stella health` checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HealthTarget {
    /// `stella-attestor`, at --attestor.
    Attestor,
    /// `stella-gate`, at --gate.
    Gate,
}

impl HealthTarget {
    fn service(self) -> Service {
        match self {
            HealthTarget::Attestor => Service::Attestor,
            HealthTarget::Gate => Service::Gate,
        }
    }

    /// Returns the gRPC service name whose status the check requests.
    fn grpc_service_name(self) -> &'static str {
        match self {
            HealthTarget::Attestor => attestor_server::SERVICE_NAME,
            HealthTarget::Gate => gate_server::SERVICE_NAME,
        }
    }
}

/// Returns the name that the health protocol gives a status, such as `SERVING`.
fn status_name(status: ServingStatus) -> &'static str {
    match status {
        ServingStatus::Unknown => "UNKNOWN",
        ServingStatus::Serving => "SERVING",
        ServingStatus::NotServing => "NOT_SERVING",
        ServingStatus::ServiceUnknown => "SERVICE_UNKNOWN",
    }
}

/// `stella health`: exits 0 when the service reports `SERVING`, 1 for any other status, and 4
/// when the service cannot be reached or does not respond within the request timeout.
pub async fn check(services: &Services, args: &HealthArgs) -> Result<Report, Failure> {
    let target = args.service;
    let service = target.service();
    let url = match target {
        HealthTarget::Attestor => services.attestor_url.clone(),
        HealthTarget::Gate => services.gate_url.clone(),
    };
    let mut options = services.options.clone();
    options.token = None;
    options.tls = services.access.tls(&config::process_env)?;

    let channel = open_channel(service, &url, &options).await?;
    let mut client = HealthClient::new(channel);
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: target.grpc_service_name().to_owned(),
    });
    request.set_timeout(options.request_timeout);
    let response = client
        .check(request)
        .await
        .map_err(|status| ClientError::from_status(service, &url, status))?;

    let raw_status = response.into_inner().status;
    let status = ServingStatus::try_from(raw_status).unwrap_or(ServingStatus::Unknown);
    let name = status_name(status);
    let exit = if status == ServingStatus::Serving {
        Exit::Success
    } else {
        Exit::Failure
    };
    let mut report = Report::new(exit);
    report
        .field("service", service.to_string())
        .field("url", url.clone())
        .field("grpc_service", target.grpc_service_name())
        .field("status", name)
        .line(format!("{service} at {url}: {name}"));
    if exit != Exit::Success {
        report.error_line(format!(
            "error: {service} at {url} reports {name} for {}, not SERVING",
            target.grpc_service_name()
        ));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_service_names_match_servers() {
        assert_eq!(
            HealthTarget::Attestor.grpc_service_name(),
            "stella.attestor.v1.Attestor"
        );
        assert_eq!(
            HealthTarget::Gate.grpc_service_name(),
            "stella.gate.v1.Gate"
        );
    }

    #[test]
    fn status_names_follow_protocol() {
        let rows = [
            (ServingStatus::Unknown, "UNKNOWN"),
            (ServingStatus::Serving, "SERVING"),
            (ServingStatus::NotServing, "NOT_SERVING"),
            (ServingStatus::ServiceUnknown, "SERVICE_UNKNOWN"),
        ];
        for (status, expected) in rows {
            assert_eq!(status_name(status), expected, "{status:?}");
        }
    }
}
