package weft;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.concurrent.CountDownLatch;

import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.settings.Settings;
import org.opensearch.core.common.transport.TransportAddress;
import org.opensearch.env.Environment;
import org.opensearch.http.HttpServerTransport;
import org.opensearch.index.mapper.MapperExtrasPlugin;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;
import org.opensearch.transport.TransportService;

/**
 * Weft's local OpenSearch: one embedded single node, started from Maven Central jars only.
 *
 * <p>Usage: {@code java -cp ... weft.WeftOpenSearch key=value...}; every argument is an
 * OpenSearch setting applied over the defaults below ({@code path.home}, {@code path.data},
 * {@code http.port} and {@code transport.port} are expected from scripts/services.sh). When the
 * node answers, the bound ports are written to {@code <path.home>/bound-ports} as
 * {@code HTTP_PORT=...} / {@code TRANSPORT_PORT=...} lines, so a caller that passes a port range
 * (e.g. {@code http.port=19200-19299}) still learns the real port. Any failure to build or start
 * the node ends the process with status 1 (the reason in the log).
 *
 * <p>Why a subclass of {@link Node}: the public constructor loads plugins only from the
 * {@code modules/} and {@code plugins/} directories of a distribution; the protected one also
 * accepts plugins found on the classpath, which is how the Netty4 HTTP/transport layer and the
 * common analyzers come in here. The bootstrap checks (the refusal to run as root, the
 * mmap/file-descriptor limits) live in {@code org.opensearch.bootstrap.Bootstrap}, which is not
 * used, so the node runs as root and without tuning the machine's limits.
 */
public final class WeftOpenSearch {
    /** Plugins that a full distribution would load as modules, loaded from the classpath. */
    private static final List<Class<? extends Plugin>> PLUGINS = List.of(
        Netty4Plugin.class,
        CommonAnalysisPlugin.class,
        MapperExtrasPlugin.class
    );

    /** Node with classpath plugins; see the class comment. */
    private static final class EmbeddedNode extends Node {
        EmbeddedNode(Environment environment) {
            // true: private index settings (index.creation_date, ...) are refused, as in a server.
            super(environment, PLUGINS, true);
        }
    }

    private WeftOpenSearch() {}

    private static void fail(String what, Exception e) {
        System.err.println("weft-opensearch: " + what + ": " + e);
        e.printStackTrace();
        System.exit(1);
    }

    public static void main(String[] args) throws Exception {
        Settings.Builder builder = Settings.builder()
            .put("cluster.name", "weft-local")
            .put("node.name", "weft-local")
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.port", "9200")
            .put("transport.port", "9300")
            // The machine's disk may be fuller than the default watermarks allow; a local test
            // store must never turn read-only because of it.
            .put("cluster.routing.allocation.disk.threshold_enabled", false);
        for (String arg : args) {
            int eq = arg.indexOf('=');
            if (eq <= 0) {
                System.err.println("weft-opensearch: expected key=value settings, got `" + arg + "`");
                System.exit(2);
            }
            builder.put(arg.substring(0, eq), arg.substring(eq + 1));
        }
        Settings settings = builder.build();
        if (!settings.hasValue("path.home")) {
            System.err.println("weft-opensearch: path.home=<dir> is required");
            System.exit(2);
        }
        Path home = Paths.get(settings.get("path.home")).toAbsolutePath();
        // A distribution's layout: the node lists these directories and fails if they are absent.
        for (String dir : List.of("config", "modules", "plugins", "logs")) {
            Files.createDirectories(home.resolve(dir));
        }

        Environment environment = InternalSettingsPreparer.prepareEnvironment(
            settings,
            java.util.Collections.emptyMap(),
            home.resolve("config"),
            () -> settings.get("node.name")
        );
        Node node;
        try {
            node = new EmbeddedNode(environment);
        } catch (Exception e) {
            fail("the node could not be built", e);
            return;
        }
        CountDownLatch closed = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
            } catch (IOException e) {
                System.err.println("weft-opensearch: close failed: " + e);
            } finally {
                closed.countDown();
            }
        }, "weft-opensearch-shutdown"));
        try {
            node.start();
        } catch (Exception e) {
            // E.g. a port already taken. The node's thread pools would keep the JVM alive, so
            // exit explicitly: the caller sees the process die and reads why in the log.
            fail("the node could not start", e);
            return;
        }

        TransportAddress http = node.injector().getInstance(HttpServerTransport.class).boundAddress().publishAddress();
        TransportAddress transport = node.injector().getInstance(TransportService.class).boundAddress().publishAddress();
        Path ports = home.resolve("bound-ports");
        Path tmp = home.resolve("bound-ports.tmp");
        Files.writeString(
            tmp,
            "HTTP_PORT=" + http.getPort() + "\nTRANSPORT_PORT=" + transport.getPort() + "\n",
            StandardCharsets.UTF_8
        );
        Files.move(tmp, ports, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        System.err.println("weft-opensearch: started, http on " + http + ", transport on " + transport);
        closed.await();
    }
}
