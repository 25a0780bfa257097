// A mutual-TLS client for the keystore e2e test (run with `java Client.java`): it uses a
// PKCS#12 or JKS keystore (key + chain) and truststore as a Java service would, connects
// to host:port, and prints the line the server sends back (the HSA-id the server read from
// this client's certificate). Exit 0 on success, 2 when the handshake or connection fails.
//
// Usage: java Client.java <host> <port> <keystore> <keystore-password> <truststore> <truststore-password>
// The store passwords are read from the environment variables named by the arguments
// (never from the command line, which other users could see).

import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

public class Client {
    static KeyStore load(String path, char[] password) throws Exception {
        // PKCS12 or JKS by content: Java 17's keystore.type.compat reads both.
        KeyStore ks = KeyStore.getInstance(path.endsWith(".jks") ? "JKS" : "PKCS12");
        try (FileInputStream in = new FileInputStream(path)) {
            ks.load(in, password);
        }
        return ks;
    }

    public static void main(String[] args) throws Exception {
        String host = args[0];
        int port = Integer.parseInt(args[1]);
        char[] keyPass = System.getenv(args[3]).toCharArray();
        char[] trustPass = System.getenv(args[5]).toCharArray();
        try {
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(load(args[2], keyPass), keyPass);
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(load(args[4], trustPass));
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
            try (SSLSocket socket = (SSLSocket) ctx.getSocketFactory().createSocket(host, port)) {
                socket.startHandshake();
                BufferedReader reader = new BufferedReader(
                        new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
                System.out.println("server said: " + reader.readLine());
            }
        } catch (Exception e) {
            System.out.println("handshake failed: " + e);
            System.exit(2);
        }
    }
}
