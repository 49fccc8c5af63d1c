/* The web monitor: one self-contained page at / (no external scripts or styles) that polls
 * the REST API every 2 s for the overview and the jobs, and cancels a job with PATCH. */
#include "rest/rest_internal.h"

#include <microhttpd.h>
#include <string.h>

static const char page[] =
    "<!doctype html>\n"
    "<html><head><meta charset=\"utf-8\"><title>Sluice JobManager</title>\n"
    "<style>\n"
    "body{font:14px system-ui,sans-serif;margin:2em;color:#222}\n"
    "table{border-collapse:collapse;margin-top:1em}td,th{padding:4px 12px;border-bottom:1px solid #ddd;"
    "text-align:left}\n"
    ".RUNNING{color:#06c}.FINISHED{color:#080}.FAILED{color:#c00}.CANCELED{color:#888}\n"
    "#overview span{margin-right:2em}\n"
    "</style></head><body>\n"
    "<h1>Sluice JobManager</h1>\n"
    "<div id=\"overview\">loading...</div>\n"
    "<table><thead><tr><th>job</th><th>name</th><th>state</th><th>started</th><th>duration</th><th></th>"
    "</tr></thead><tbody id=\"jobs\"></tbody></table>\n"
    "<p id=\"error\" style=\"color:#c00\"></p>\n"
    "<script>\n"
    "function text(t){return document.createTextNode(t);}\n"
    "function cell(tr,t,cls){var td=document.createElement('td');td.appendChild(text(t));"
    "if(cls)td.className=cls;tr.appendChild(td);return td;}\n"
    "function dur(ms){var s=Math.round(ms/1000);return s<120?s+' s':Math.round(s/60)+' min';}\n"
    "function cancel(id){fetch('/v1/jobs/'+encodeURIComponent(id),{method:'PATCH'}).then(refresh);}\n"
    "function refresh(){\n"
    " fetch('/v1/overview').then(function(r){return r.json();}).then(function(o){\n"
    "  var d=document.getElementById('overview');d.textContent='';\n"
    "  [['TaskManagers',o.taskmanagers],['free slots',o['slots-available']],['running',o['jobs-running']],"
    "['finished',o['jobs-finished']],['canceled',o['jobs-cancelled']],['failed',o['jobs-failed']]]"
    ".forEach(function(p){var s=document.createElement('span');s.appendChild(text(p[0]+': '+p[1]));"
    "d.appendChild(s);});});\n"
    " fetch('/v1/jobs/overview').then(function(r){return r.json();}).then(function(j){\n"
    "  var b=document.getElementById('jobs');b.textContent='';\n"
    "  j.jobs.forEach(function(x){var tr=document.createElement('tr');cell(tr,x.jid);cell(tr,x.name);"
    "cell(tr,x.state,x.state);cell(tr,new Date(x['start-time']).toLocaleString());cell(tr,dur(x.duration));"
    "var td=cell(tr,'');if(x['end-time']<0){var k=document.createElement('button');k.appendChild(text('cancel'));"
    "k.onclick=function(){cancel(x.jid);};td.appendChild(k);}if(x['failure-cause'])td.appendChild("
    "text(x['failure-cause']));b.appendChild(tr);});\n"
    "  document.getElementById('error').textContent='';\n"
    " }).catch(function(e){document.getElementById('error').textContent='JobManager unreachable: '+e;});\n"
    "}\n"
    "refresh();setInterval(refresh,2000);\n"
    "</script></body></html>\n";

bool sl_rest_web_route(const sl_rest_req_t *q, struct MHD_Response **out, unsigned *status) {
    if (strcmp(q->path, "/") != 0 && strcmp(q->path, "/index.html") != 0)
        return false;
    if (strcmp(q->method, "GET") != 0)
        return false;
    *out = MHD_create_response_from_buffer(sizeof page - 1, (void *)page, MHD_RESPMEM_PERSISTENT);
    if (*out)
        MHD_add_response_header(*out, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8");
    *status = MHD_HTTP_OK;
    return true;
}
