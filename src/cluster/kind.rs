//! kind, driven through its CLI (that is its interface): the generated cluster config and the
//! command lines.

use serde_json::json;
use std::path::Path;

/// What the generated kind cluster looks like.
#[derive(Debug, Clone)]
pub struct KindSpec {
    pub name: String,
    pub workers: u32,
    /// NodePorts the stacks' entry points use, mapped 1:1 to 127.0.0.1 on this machine.
    pub node_ports: Vec<u16>,
    /// Host port for the ingress controller's HTTP port (80 inside the node).
    pub ingress_http_port: u16,
    /// `kindest/node:<version>` to test a given Kubernetes version (e.g. v1.24.17).
    pub node_image: Option<String>,
}

impl KindSpec {
    pub fn context(&self) -> String {
        format!("kind-{}", self.name)
    }

    /// The kind config: one control plane labelled `ingress-ready` (ingress-nginx's kind
    /// manifest schedules there) carrying every host port mapping, plus `workers` workers.
    /// Mappings listen on 127.0.0.1 only: test traffic never leaves this machine.
    pub fn config_yaml(&self) -> String {
        let mut mappings = vec![json!({"containerPort": 80, "hostPort": self.ingress_http_port, "listenAddress": "127.0.0.1", "protocol": "TCP"})];
        for port in &self.node_ports {
            mappings.push(json!({"containerPort": port, "hostPort": port, "listenAddress": "127.0.0.1", "protocol": "TCP"}));
        }
        let mut nodes = vec![json!({
            "role": "control-plane",
            "kubeadmConfigPatches": ["kind: InitConfiguration\nnodeRegistration:\n  kubeletExtraArgs:\n    node-labels: \"ingress-ready=true\"\n"],
            "extraPortMappings": mappings,
        })];
        for _ in 0..self.workers {
            nodes.push(json!({"role": "worker"}));
        }
        let config = json!({
            "kind": "Cluster",
            "apiVersion": "kind.x-k8s.io/v1alpha4",
            "name": self.name,
            "nodes": nodes,
        });
        serde_yaml::to_string(&config).expect("JSON values always serialize to YAML")
    }

    pub fn create_command(&self, config_path: &Path) -> Vec<String> {
        let mut argv: Vec<String> = ["kind", "create", "cluster", "--name", &self.name, "--wait", "180s", "--config"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        argv.push(config_path.display().to_string());
        if let Some(image) = &self.node_image {
            argv.extend(["--image".to_string(), image.clone()]);
        }
        argv
    }

    pub fn delete_command(&self) -> Vec<String> {
        vec!["kind".into(), "delete".into(), "cluster".into(), "--name".into(), self.name.clone()]
    }

    pub fn kubeconfig_command(&self) -> Vec<String> {
        vec!["kind".into(), "get".into(), "kubeconfig".into(), "--name".into(), self.name.clone()]
    }
}

pub fn list_command() -> Vec<String> {
    vec!["kind".into(), "get".into(), "clusters".into()]
}

/// `kind get clusters` prints one name a line (and "No kind clusters found." on stderr).
pub fn parse_clusters(stdout: &str) -> Vec<String> {
    stdout.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> KindSpec {
        KindSpec { name: "seaworthy".into(), workers: 2, node_ports: vec![30080, 31090], ingress_http_port: 18080, node_image: None }
    }

    #[test]
    fn config_has_one_control_plane_two_workers_and_loopback_mappings() {
        let config: serde_yaml::Value = serde_yaml::from_str(&spec().config_yaml()).unwrap();
        assert_eq!(config["apiVersion"], "kind.x-k8s.io/v1alpha4");
        let nodes = config["nodes"].as_sequence().unwrap();
        let roles: Vec<&str> = nodes.iter().map(|n| n["role"].as_str().unwrap()).collect();
        assert_eq!(roles, ["control-plane", "worker", "worker"]);
        let mappings = nodes[0]["extraPortMappings"].as_sequence().unwrap();
        let pairs: Vec<(u64, u64)> = mappings.iter().map(|m| (m["containerPort"].as_u64().unwrap(), m["hostPort"].as_u64().unwrap())).collect();
        assert_eq!(pairs, [(80, 18080), (30080, 30080), (31090, 31090)]);
        assert!(mappings.iter().all(|m| m["listenAddress"] == "127.0.0.1"));
        assert!(nodes[0]["kubeadmConfigPatches"][0].as_str().unwrap().contains("ingress-ready=true"));
    }

    #[test]
    fn command_lines() {
        let mut s = spec();
        assert_eq!(
            s.create_command(Path::new("/tmp/kind.yaml")).join(" "),
            "kind create cluster --name seaworthy --wait 180s --config /tmp/kind.yaml"
        );
        s.node_image = Some("kindest/node:v1.24.17".into());
        assert!(s.create_command(Path::new("/k")).ends_with(&["--image".to_string(), "kindest/node:v1.24.17".to_string()]));
        assert_eq!(s.delete_command().join(" "), "kind delete cluster --name seaworthy");
        assert_eq!(s.context(), "kind-seaworthy");
        assert_eq!(parse_clusters("kind\nseaworthy\n\n"), ["kind", "seaworthy"]);
    }
}
