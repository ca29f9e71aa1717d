# pki: a test CA, a server certificate for 127.0.0.1 and a client
# certificate (CN k8-reflexd), made once per $T, for the fixture API server
# and the OTLP receiver. Needs T and fail from the sourcing script.
pki() {
	[ -f "$T/pki/server.crt" ] && return 0
	mkdir -p "$T/pki"
	(
		cd "$T/pki"
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
			-keyout ca.key -out ca.crt -subj /CN=k8-test-ca
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout server.key -out server.csr -subj /CN=127.0.0.1
		printf 'subjectAltName=IP:127.0.0.1\n' > ext
		openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
			-extfile ext -out server.crt
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout client.key -out client.csr -subj /CN=k8-reflexd
		openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
			-out client.crt
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
			-keyout other.key -out other.crt -subj /CN=k8-other-ca
	) > "$T/pki/log" 2>&1 || fail "openssl: $(tail -3 "$T/pki/log")"
}
