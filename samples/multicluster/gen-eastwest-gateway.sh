#!/usr/bin/env bash
#
# Prints the IstioOperator of the east-west gateway, for `meshplane install -y -f -`
# (meshplane's copy of Istio's samples/multicluster/gen-eastwest-gateway.sh; same flags, same output
# as `meshplane gen-eastwest-gateway`). --cluster and --mesh are accepted and ignored, as in Istio.
#
#   samples/multicluster/gen-eastwest-gateway.sh --network network1 | meshplane install -y -f -

set -euo pipefail

single_cluster=0
network=""
revision=""
while (( "$#" )); do
  case "$1" in
    --single-cluster) single_cluster=1; shift ;;
    --network|--revision|--cluster|--mesh)
      if [[ $# -lt 2 ]]; then
        echo "Error: $1 needs a value" >&2
        exit 1
      fi
      case "$1" in
        --network) network="$2" ;;
        --revision) revision="$2" ;;
      esac
      shift 2 ;;
    --network=*) network="${1#*=}"; shift ;;
    --revision=*) revision="${1#*=}"; shift ;;
    --cluster=*|--mesh=*) shift ;;
    --ambient)
      echo "Error: --ambient is not supported by meshplane" >&2
      exit 1 ;;
    *)
      echo "Error: Unsupported flag $1" >&2
      exit 1 ;;
  esac
done

if [[ "${single_cluster}" -eq 0 && -z "${network}" ]]; then
  echo "Must specify either --single-cluster or --network."
  exit 1
fi

cat <<EOT
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata:
  name: eastwest
spec:
  revision: "${revision}"
  profile: empty
  components:
    ingressGateways:
      - name: istio-eastwestgateway
        label:
          istio: eastwestgateway
          app: istio-eastwestgateway
EOT
if [[ "${single_cluster}" -eq 0 ]]; then
  echo "          topology.istio.io/network: ${network}"
fi
echo "        enabled: true"
echo "        k8s:"
if [[ "${single_cluster}" -eq 0 ]]; then
  cat <<EOT
          env:
            # traffic through this gateway should be routed inside the network
            - name: ISTIO_META_REQUESTED_NETWORK_VIEW
              value: ${network}
EOT
fi
echo "          service:"
echo "            ports:"
for entry in status-port:15021 tls:15443 tls-istiod:15012 tls-webhook:15017; do
  echo "              - name: ${entry%%:*}"
  echo "                port: ${entry##*:}"
  echo "                targetPort: ${entry##*:}"
done
cat <<EOT
  values:
    gateways:
      istio-ingressgateway:
        injectionTemplate: gateway
EOT
if [[ "${single_cluster}" -eq 0 ]]; then
  echo "    global:"
  echo "      network: ${network}"
fi
