//! k3d, driven through its CLI. k3s brings metrics-server, traefik and local-path storage, so
//! nothing else needs installing.

#[derive(Debug, Clone)]
pub struct K3dSpec {
    pub name: String,
    pub agents: u32,
    pub node_ports: Vec<u16>,
    pub ingress_http_port: u16,
    /// `rancher/k3s:<version>` to test a given Kubernetes version (e.g. v1.24.17-k3s1).
    pub image: Option<String>,
}

impl K3dSpec {
    pub fn context(&self) -> String {
        format!("k3d-{}", self.name)
    }

    pub fn create_command(&self) -> Vec<String> {
        let mut argv: Vec<String> = ["k3d", "cluster", "create", &self.name, "--wait", "--timeout", "180s"].iter().map(|s| s.to_string()).collect();
        argv.extend(["--agents".to_string(), self.agents.to_string()]);
        // Traefik answers on the load balancer's port 80; NodePorts on the server node.
        argv.extend(["-p".to_string(), format!("127.0.0.1:{}:80@loadbalancer", self.ingress_http_port)]);
        for port in &self.node_ports {
            argv.extend(["-p".to_string(), format!("127.0.0.1:{port}:{port}@server:0")]);
        }
        if let Some(image) = &self.image {
            argv.extend(["--image".to_string(), image.clone()]);
        }
        argv
    }

    pub fn delete_command(&self) -> Vec<String> {
        vec!["k3d".into(), "cluster".into(), "delete".into(), self.name.clone()]
    }

    pub fn kubeconfig_command(&self) -> Vec<String> {
        vec!["k3d".into(), "kubeconfig".into(), "get".into(), self.name.clone()]
    }
}

pub fn list_command() -> Vec<String> {
    vec!["k3d".into(), "cluster".into(), "list".into(), "-o".into(), "json".into()]
}

/// `k3d cluster list -o json` is an array of clusters with a `name`.
pub fn parse_clusters(stdout: &str) -> anyhow::Result<Vec<String>> {
    let clusters: Vec<serde_json::Value> = serde_json::from_str(stdout)?;
    Ok(clusters.iter().filter_map(|c| c["name"].as_str().map(str::to_string)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines() {
        let s = K3dSpec { name: "seaworthy".into(), agents: 2, node_ports: vec![30080], ingress_http_port: 18080, image: None };
        assert_eq!(
            s.create_command().join(" "),
            "k3d cluster create seaworthy --wait --timeout 180s --agents 2 -p 127.0.0.1:18080:80@loadbalancer -p 127.0.0.1:30080:30080@server:0"
        );
        assert_eq!(s.delete_command().join(" "), "k3d cluster delete seaworthy");
        assert_eq!(s.context(), "k3d-seaworthy");
        assert_eq!(parse_clusters(r#"[{"name":"a","servers":1},{"name":"b"}]"#).unwrap(), ["a", "b"]);
    }
}
