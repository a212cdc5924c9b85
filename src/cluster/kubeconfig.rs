//! Which kubeconfig and context to use, and how to say so in messages.

use anyhow::{Context, Result, anyhow};
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::path::PathBuf;

/// Where the kubeconfig comes from: an explicit file, or the environment.
#[derive(Debug, Clone, Default)]
pub enum KubeconfigSource {
    /// SEAWORTHY_KUBECONFIG, else KUBECONFIG (which may list several files), else ~/.kube/config.
    #[default]
    Environment,
    File(PathBuf),
    /// A kubeconfig held in memory (from `kind get kubeconfig`, or the k3s container).
    Yaml(String),
}

impl KubeconfigSource {
    /// The client config for `context` (default: the kubeconfig's current context), the context
    /// name, and a description of where the kubeconfig came from for messages.
    pub async fn load(&self, context: Option<&str>) -> Result<(kube::Config, String, String)> {
        let (kubeconfig, described) = match self {
            KubeconfigSource::File(path) => (read(path)?, format!("kubeconfig {}", path.display())),
            KubeconfigSource::Yaml(yaml) => (Kubeconfig::from_yaml(yaml).context("parsing the kubeconfig")?, "generated kubeconfig".into()),
            KubeconfigSource::Environment => {
                if let Some(path) = std::env::var_os("SEAWORTHY_KUBECONFIG") {
                    let path = PathBuf::from(path);
                    (read(&path)?, format!("kubeconfig {} (SEAWORTHY_KUBECONFIG)", path.display()))
                } else if let Some(list) = std::env::var_os("KUBECONFIG") {
                    (Kubeconfig::read().context("reading the files in KUBECONFIG")?, format!("KUBECONFIG={}", list.to_string_lossy()))
                } else {
                    let path = home_kubeconfig().ok_or_else(|| anyhow!("no kubeconfig: set SEAWORTHY_KUBECONFIG or KUBECONFIG, or create a cluster with `seaworthy up`"))?;
                    (read(&path)?, format!("kubeconfig {}", path.display()))
                }
            }
        };
        let context = match context.map(str::to_string).or_else(|| kubeconfig.current_context.clone()) {
            Some(c) => c,
            None => anyhow::bail!("{described} has no current-context: pass --context NAME"),
        };
        if !kubeconfig.contexts.iter().any(|c| c.name == context) {
            let names: Vec<&str> = kubeconfig.contexts.iter().map(|c| c.name.as_str()).collect();
            anyhow::bail!("context {context:?} is not in {described} (contexts: {})", names.join(", "));
        }
        let options = KubeConfigOptions { context: Some(context.clone()), ..Default::default() };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .with_context(|| format!("loading context {context} from {described}"))?;
        Ok((config, context, described))
    }
}

fn read(path: &std::path::Path) -> Result<Kubeconfig> {
    Kubeconfig::read_from(path).with_context(|| format!("reading kubeconfig {}", path.display()))
}

fn home_kubeconfig() -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var_os("HOME")?).join(".kube").join("config");
    path.is_file().then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_CONTEXTS: &str = "apiVersion: v1
kind: Config
current-context: kind-seaworthy
clusters:
- name: kind-seaworthy
  cluster: {server: 'https://127.0.0.1:1'}
- name: prod
  cluster: {server: 'https://10.0.0.1:6443'}
users:
- name: u
  user: {token: abc}
contexts:
- name: kind-seaworthy
  context: {cluster: kind-seaworthy, user: u}
- name: prod
  context: {cluster: prod, user: u}
";

    #[tokio::test]
    async fn current_context_and_named_context() {
        let source = KubeconfigSource::Yaml(TWO_CONTEXTS.into());
        let (config, context, _) = source.load(None).await.unwrap();
        assert_eq!(context, "kind-seaworthy");
        assert_eq!(config.cluster_url.to_string(), "https://127.0.0.1:1/");
        let (_, context, _) = source.load(Some("prod")).await.unwrap();
        assert_eq!(context, "prod");
        let e = source.load(Some("nope")).await.unwrap_err().to_string();
        assert!(e.contains("context \"nope\" is not in") && e.contains("kind-seaworthy, prod"), "{e}");
    }

    #[tokio::test]
    async fn unreachable_api_server_is_one_sentence_with_url_and_context() {
        // Port 1 on loopback refuses at once: no cluster is contacted.
        let opts = super::super::ConnectOptions { kubeconfig: KubeconfigSource::Yaml(TWO_CONTEXTS.into()), ..Default::default() };
        let e = match super::super::Cluster::connect_existing(&opts).await {
            Ok(_) => panic!("nothing listens on 127.0.0.1:1"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains("cannot reach the Kubernetes API at https://127.0.0.1:1/"), "{e}");
        assert!(e.contains("context kind-seaworthy"), "{e}");
    }

    #[tokio::test]
    async fn a_production_context_is_refused_before_any_request() {
        let opts = super::super::ConnectOptions {
            kubeconfig: KubeconfigSource::Yaml(TWO_CONTEXTS.into()),
            context: Some("prod".into()),
            allow_context: None,
        };
        let e = match super::super::Cluster::connect_existing(&opts).await {
            Ok(_) => panic!("prod must be refused"),
            Err(e) => e.to_string(),
        };
        assert!(e.starts_with("refusing context \"prod\""), "{e}");
    }
}
