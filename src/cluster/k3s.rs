//! k3s in a Docker container via testcontainers: the embedded default for a machine with Docker
//! but neither kind nor k3d. It lives as long as the seaworthy process that started it.

use super::{Access, Cluster, KubeconfigSource, Provider, lifecycle, safety::OWN_K3S_CONTEXT, tools};
use anyhow::{Context, Result};
use testcontainers_modules::k3s::{K3s, KUBE_SECURE_PORT, TRAEFIK_HTTP};
use testcontainers_modules::testcontainers::core::ContainerPort;
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use testcontainers_modules::testcontainers::{ContainerAsync, ImageExt};

pub type K3sContainer = ContainerAsync<K3s>;

#[derive(Debug, Clone, Default)]
pub struct K3sOptions {
    /// NodePorts to publish on the same host ports.
    pub node_ports: Vec<u16>,
}

pub async fn start(opts: &K3sOptions) -> Result<Cluster> {
    tools::require_docker()?;
    let conf = tempfile::Builder::new().prefix("seaworthy-k3s-").tempdir().context("creating the k3s config folder")?;
    let conf_dir = conf.keep();
    let mut request = K3s::default().with_conf_mount(&conf_dir).with_privileged(true).with_userns_mode("host");
    for port in &opts.node_ports {
        request = request.with_mapped_port(*port, ContainerPort::Tcp(*port));
    }
    let container = request.start().await.context("starting k3s in a container (testcontainers)")?;
    let api_port = container.get_host_port_ipv4(KUBE_SECURE_PORT).await?;
    let http_port = container.get_host_port_ipv4(TRAEFIK_HTTP).await?;
    let yaml = std::fs::read_to_string(conf_dir.join("k3s.yaml")).context("reading the k3s kubeconfig")?;
    let yaml = rewrite_kubeconfig(&yaml, api_port)?;
    let (config, _, _) = KubeconfigSource::Yaml(yaml).load(Some(OWN_K3S_CONTEXT)).await?;
    let url = config.cluster_url.to_string();
    let client = kube::Client::try_from(config)?;
    let info = super::reach(&client, &url, OWN_K3S_CONTEXT, "the k3s container's kubeconfig").await?;
    let mut cluster = Cluster {
        client,
        provider: Provider::K3s,
        context: OWN_K3S_CONTEXT.into(),
        info,
        access: Access::Loopback { ingress_http_port: Some(http_port) },
        _k3s: Some(container),
    };
    // The ready log line comes before k3s' own metrics-server and traefik are up.
    lifecycle::settle(&mut cluster, &lifecycle::k3s_readiness()).await?;
    Ok(cluster)
}

/// The k3s kubeconfig names its context `default` and its server `https://127.0.0.1:6443`
/// inside the container; from here it is the mapped port, under seaworthy's own context name
/// (which the safety guard accepts).
pub fn rewrite_kubeconfig(yaml: &str, api_port: u16) -> Result<String> {
    let mut config: serde_yaml::Value = serde_yaml::from_str(yaml).context("parsing the k3s kubeconfig")?;
    for cluster in config["clusters"].as_sequence_mut().into_iter().flatten() {
        cluster["cluster"]["server"] = format!("https://127.0.0.1:{api_port}").into();
    }
    for context in config["contexts"].as_sequence_mut().into_iter().flatten() {
        context["name"] = OWN_K3S_CONTEXT.into();
    }
    config["current-context"] = OWN_K3S_CONTEXT.into();
    Ok(serde_yaml::to_string(&config)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_points_at_the_mapped_port_under_our_context() {
        let k3s = "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: QQ==\n    server: https://127.0.0.1:6443\n  name: default\ncontexts:\n- context:\n    cluster: default\n    user: default\n  name: default\ncurrent-context: default\nkind: Config\nusers:\n- name: default\n  user: {token: t}\n";
        let out: serde_yaml::Value = serde_yaml::from_str(&rewrite_kubeconfig(k3s, 40123).unwrap()).unwrap();
        assert_eq!(out["clusters"][0]["cluster"]["server"], "https://127.0.0.1:40123");
        assert_eq!(out["current-context"], OWN_K3S_CONTEXT);
        assert_eq!(out["contexts"][0]["name"], OWN_K3S_CONTEXT);
    }
}
