// FloeRestFixture runs Apache Iceberg's REST catalog test fixture
// (iceberg-open-api's RESTCatalogServer, configured from CATALOG_*
// environment variables as the apache/iceberg-rest-fixture image is) but
// listens on 127.0.0.1 only: the fixture's own main binds every interface.
// integration/engines/rest.sh compiles and runs it.
package org.apache.iceberg.rest;

import java.lang.reflect.Method;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;

public class FloeRestFixture {
  public static void main(String[] args) throws Exception {
    int port = Integer.parseInt(args[0]);
    Method init = RESTCatalogServer.class.getDeclaredMethod("initializeBackendCatalog");
    init.setAccessible(true);
    RESTCatalogServer.CatalogContext ctx =
        (RESTCatalogServer.CatalogContext) init.invoke(new RESTCatalogServer());
    RESTCatalogAdapter adapter = new RESTServerCatalogAdapter(ctx);
    ServletContextHandler context = new ServletContextHandler(ServletContextHandler.NO_SESSIONS);
    context.addServlet(new ServletHolder(new RESTCatalogServlet(adapter)), "/*");
    Server server = new Server();
    ServerConnector connector = new ServerConnector(server);
    connector.setHost("127.0.0.1");
    connector.setPort(port);
    server.addConnector(connector);
    server.setHandler(context);
    server.start();
    System.out.println("FloeRestFixture listening on 127.0.0.1:" + port);
    server.join();
  }
}
